//! `test:sleeper`: calls `complete` once; the host's test makes that call block for a long time,
//! to check that the stage's deadline still holds while the plugin waits on the host.

use tailor_plugin_sdk::prelude::*;

pub struct Sleeper;

impl Plugin for Sleeper {
    fn describe() -> Descriptor {
        Descriptor::builder("test:sleeper", env!("CARGO_PKG_VERSION"), StageKind::Generator)
            .summary("waits on the LLM")
            .output("text", "text", "the LLM's reply, if it ever comes")
            .grant(Capability::Complete)
            .build()
    }

    fn run(_ctx: &Context, _inputs: &Inputs, _config: &Config) -> Result<Outputs, StageError> {
        let completion = host::complete(&host::CompletionRequest::new().user("Take your time."))?;
        Ok(Outputs::new().text("text", completion.text().unwrap_or_default()))
    }
}

export_plugin!(Sleeper);
