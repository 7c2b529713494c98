//! `test:flood`: returns one text output of 100 MiB (by default). The host's output size cap
//! must reject it. The instance itself needs a little over that much linear memory, so a host
//! test of the output cap must allow the instance more memory than the output cap.

use tailor_plugin_sdk::prelude::*;

pub struct Flood;

impl Plugin for Flood {
    fn describe() -> Descriptor {
        Descriptor::builder("test:flood", env!("CARGO_PKG_VERSION"), StageKind::Generator)
            .summary("returns a huge output")
            .output("text", "text", "`mib` MiB of `x`")
            .config(ConfigField::integer("mib", 1.0, 1024.0).default(100.0).doc("how many MiB to return"))
            .build()
    }

    fn run(_ctx: &Context, _inputs: &Inputs, config: &Config) -> Result<Outputs, StageError> {
        let bytes = config.integer("mib")? as usize * (1 << 20);
        Ok(Outputs::new().text("text", "x".repeat(bytes)))
    }
}

export_plugin!(Flood);
