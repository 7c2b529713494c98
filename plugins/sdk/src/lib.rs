//! # tailor-plugin-sdk
//!
//! Write a [Tailor](https://github.com/tailor-llm/tailor) pipeline stage as a WebAssembly
//! component in a few dozen lines. The SDK generates the bindings of the `tailor:plugin@0.1.0`
//! world (`plugins/wit/tailor.wit`, normative in spec/plugin-abi.md) and hides them: a plugin sees
//! typed [`Inputs`], [`Config`] and [`Outputs`], builds its [`Descriptor`] with a builder, calls
//! the host through [`host`], and fails with a [`StageError`].
//!
//! ## Example
//!
//! A plugin that shouts its input; built with `cargo build --release --target wasm32-wasip2`
//! as a `cdylib`, it becomes a component the host can load.
//!
//! ```no_run
//! use tailor_plugin_sdk::prelude::*;
//!
//! struct Shout;
//!
//! impl Plugin for Shout {
//!     fn describe() -> Descriptor {
//!         Descriptor::builder("example:shout", env!("CARGO_PKG_VERSION"), StageKind::Generator)
//!             .summary("upper-cases a text, a number of times")
//!             .input(InputPort::new("text", "text").doc("what to shout"))
//!             .output("text", "text", "the shouted text")
//!             .config(ConfigField::integer("times", 1.0, 10.0).default(1.0).doc("how often"))
//!             .build()
//!     }
//!
//!     fn run(ctx: &Context, inputs: &Inputs, config: &Config) -> Result<Outputs, StageError> {
//!         let text = inputs.text("text")?;
//!         let times = config.integer("times")?; // the default 1 is filled in
//!         host::debug(&format!("stage {} shouts {times}×", ctx.stage));
//!         let shout = vec![text.to_uppercase(); times as usize].join(" ");
//!         Ok(Outputs::new().text("text", shout))
//!     }
//! }
//!
//! export_plugin!(Shout);
//! ```
//!
//! ## Core concepts
//!
//! - **[`Plugin`]**: `describe()` says what the plugin is (name, version, kind, typed ports,
//!   config schema, needed capabilities); `run()` is one call of the stage. Both are plain
//!   functions: a component is instantiated afresh for every call, so there is no state to keep.
//! - **Values** ([`Value`], [`Item`]): texts, numbers, bools, typed lists and items, and JSON for
//!   records and nesting. Accessors such as [`Values::text`] and [`Values::get`] read either
//!   encoding and turn a missing or mistyped value into an error naming the port or key.
//! - **Checked config**: before `run`, the SDK rejects unknown inputs and keys, checks every
//!   setting against its declared type (range, whole number, choice words) and fills in the
//!   descriptor's defaults. A plugin can rely on its own descriptor.
//! - **Capabilities** ([`host`]): `search`, `recent`, `embed`, `complete`, `kv_*` are denied
//!   unless the pipeline grants them and fail with [`HostError::NotGranted`]; `log` and `now` are
//!   always there. A [`HostError`] converts into [`StageError`] with `?`.
//! - **Errors and panics**: return a [`StageError`]; the pipeline's `on-error` policy decides.
//!   A panic aborts the instance (the host sees a trap) after printing its message to stderr,
//!   which the host captures.
//!
//! ## Testing
//!
//! Compiled for the machine instead of wasm, the crate's bindings are inert and [`host`] calls
//! go to a per-thread mock: [`testing::FakeHost`] (a history, a cache, a clock, a scripted LLM)
//! or your own [`testing::MockHost`]. [`testing::call`] runs a plugin through the same checks
//! as the host. `export_plugin!` expands to nothing there.

extern crate self as tailor_plugin_sdk;

mod args;
mod descriptor;
mod duration;
mod error;
pub mod host;
mod schema;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod text;
mod value;
mod wit;

/// The generated bindings of the world. Not part of the API: use the SDK's own types.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "stage",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_stage",
        runtime_path: "::tailor_plugin_sdk::__private::wit_bindgen::rt",
    });
}

pub use args::{Config, ConfigRole, InputRole, Inputs, Outputs, Role, Values};
pub use descriptor::{
    Capability, ConfigField, ConfigType, Descriptor, DescriptorBuilder, InputPort, OutputPort, PortForm, StageKind,
};
pub use duration::{DurationError, parse_duration};
pub use error::{HostError, StageError};
pub use serde_json;
pub use value::{FromValue, Item, Value, ValueError};

/// Everything a plugin usually needs: `use tailor_plugin_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::host;
    pub use crate::{
        Capability, Config, ConfigField, Context, Descriptor, InputPort, Inputs, Item, Outputs, Plugin, StageError,
        StageKind, Value, export_plugin,
    };
}

/// Where a call comes from, for logs. The user's identity is deliberately absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    pub request_id: String,
    pub pipeline: String,
    /// The stage's name in the pipeline.
    pub stage: String,
}

/// A pipeline stage. Implement it on a unit struct and export it with [`export_plugin!`].
pub trait Plugin {
    /// What the plugin is. The host calls it once at load; the SDK also uses it on every call to
    /// check inputs and config and fill defaults, so keep it cheap and deterministic.
    fn describe() -> Descriptor;

    /// One call of the stage. `config` holds every declared key that is set or has a default.
    fn run(ctx: &Context, inputs: &Inputs, config: &Config) -> Result<Outputs, StageError>;
}

/// Exports a [`Plugin`] as the component's `describe` and `run`. Use it once per crate, in a
/// `cdylib` built for `wasm32-wasip2`; on other targets it expands to nothing, so the crate's
/// unit tests build on the machine.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __TailorExport;

            impl $crate::__private::Guest for __TailorExport {
                fn describe() -> $crate::__private::WitDescriptor {
                    $crate::__private::describe::<$plugin>()
                }

                fn run(
                    context: $crate::__private::WitContext,
                    inputs: ::std::vec::Vec<$crate::__private::WitNamed>,
                    config: ::std::vec::Vec<$crate::__private::WitNamed>,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::__private::WitNamed>, $crate::__private::WitStageError> {
                    $crate::__private::run::<$plugin>(context, inputs, config)
                }
            }

            $crate::bindings::__export_stage!(__TailorExport with_types_in $crate::bindings);
        };
    };
}

/// What [`export_plugin!`] expands to refers to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::Guest;
    pub use crate::bindings::tailor::plugin::types::{
        Context as WitContext, Descriptor as WitDescriptor, Named as WitNamed, StageError as WitStageError,
    };
    pub use wit_bindgen;

    use crate::args::{Config, ConfigRole, InputRole, Inputs, Outputs, Role};
    use crate::error::StageError;
    use crate::{Context, Plugin, schema, wit};

    pub fn describe<P: Plugin>() -> WitDescriptor {
        wit::descriptor(P::describe())
    }

    pub fn run<P: Plugin>(
        context: WitContext,
        inputs: Vec<WitNamed>,
        config: Vec<WitNamed>,
    ) -> Result<Vec<WitNamed>, WitStageError> {
        let ctx = Context { request_id: context.request_id, pipeline: context.pipeline, stage: context.stage };
        let decoded = wit::from_wit_named(inputs, InputRole::error, InputRole::NOUN)
            .and_then(|inputs| Ok((inputs, wit::from_wit_named(config, ConfigRole::error, ConfigRole::NOUN)?)));
        let result = decoded
            .and_then(|(inputs, config)| call::<P>(&ctx, inputs.into_iter().collect(), config.into_iter().collect()));
        result.map(|outputs| wit::named(outputs.into_entries())).map_err(wit::stage_error)
    }

    /// A call as the host makes it, after decoding: check, fill defaults, run.
    pub(crate) fn call<P: Plugin>(ctx: &Context, inputs: Inputs, config: Config) -> Result<Outputs, StageError> {
        let descriptor = P::describe();
        schema::check_inputs(&descriptor, &inputs)?;
        let config = schema::resolve_config(&descriptor, config)?;
        P::run(ctx, &inputs, &config)
    }
}
