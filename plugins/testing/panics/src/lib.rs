//! `test:panics`: panics with the message `deliberate panic: 42`. The host must turn the trap
//! into a stage error and capture the message from stderr.

use tailor_plugin_sdk::prelude::*;

pub struct Panics;

impl Plugin for Panics {
    fn describe() -> Descriptor {
        Descriptor::builder("test:panics", env!("CARGO_PKG_VERSION"), StageKind::Generator)
            .summary("panics")
            .output("text", "text", "never produced")
            .build()
    }

    fn run(_ctx: &Context, _inputs: &Inputs, _config: &Config) -> Result<Outputs, StageError> {
        let answer = std::hint::black_box(42);
        panic!("deliberate panic: {answer}");
    }
}

export_plugin!(Panics);
