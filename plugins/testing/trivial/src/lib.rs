//! `test:trivial`: the smallest well-behaved plugin, for the host's loading, ABI and hot-reload
//! tests. Echoes input `text` (after an optional `prefix`) and reports its own version.
//!
//! Its version is the crate's, unless `TAILOR_TEST_VERSION` is set at build time: that lets a
//! host test build a second version of the same plugin to exercise hot reload.

use tailor_plugin_sdk::prelude::*;

/// The version this build reports, in `describe()` and on the `version` port.
const VERSION: &str = match option_env!("TAILOR_TEST_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

pub struct Trivial;

impl Plugin for Trivial {
    fn describe() -> Descriptor {
        Descriptor::builder("test:trivial", VERSION, StageKind::Generator)
            .summary("echoes its input and reports its version")
            .input(InputPort::new("text", "text").doc("what to echo"))
            .output("text", "text", "the input, after `prefix`")
            .output("version", "text", "this plugin's version")
            .config(ConfigField::text("prefix").default("").doc("put before the echoed text"))
            .build()
    }

    fn run(_ctx: &Context, inputs: &Inputs, config: &Config) -> Result<Outputs, StageError> {
        let echoed = format!("{}{}", config.text("prefix")?, inputs.text("text")?);
        Ok(Outputs::new().text("text", echoed).text("version", VERSION))
    }
}

export_plugin!(Trivial);

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_plugin_sdk::testing::call;

    #[test]
    fn echoes_with_default_prefix_and_reports_version() {
        let out = call::<Trivial>(Inputs::new().with("text", "hi"), Config::new()).unwrap();
        assert_eq!(out.get("text"), Some(&Value::Text("hi".into())));
        assert_eq!(out.get("version"), Some(&Value::Text(VERSION.into())));
    }

    #[test]
    fn prepends_prefix() {
        let out = call::<Trivial>(Inputs::new().with("text", "hi"), Config::new().with("prefix", "> ")).unwrap();
        assert_eq!(out.get("text"), Some(&Value::Text("> hi".into())));
    }
}
