//! `test:garbage`: returns outputs that break its own descriptor: a port it does not declare
//! (`bogus`) and a number on `text`, which is declared as text. The host must reject them.

use tailor_plugin_sdk::prelude::*;

pub struct Garbage;

impl Plugin for Garbage {
    fn describe() -> Descriptor {
        Descriptor::builder("test:garbage", env!("CARGO_PKG_VERSION"), StageKind::Generator)
            .summary("returns outputs its descriptor does not allow")
            .output("text", "text", "declared as text; comes back as a number")
            .build()
    }

    fn run(_ctx: &Context, _inputs: &Inputs, _config: &Config) -> Result<Outputs, StageError> {
        Ok(Outputs::new().text("bogus", "not a declared port").number("text", 42.0))
    }
}

export_plugin!(Garbage);
