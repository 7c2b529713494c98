//! `test:spin`: never returns. The host must stop it at the stage's deadline (epoch
//! interruption) and report a timeout.

use tailor_plugin_sdk::prelude::*;

pub struct Spin;

impl Plugin for Spin {
    fn describe() -> Descriptor {
        Descriptor::builder("test:spin", env!("CARGO_PKG_VERSION"), StageKind::Generator)
            .summary("loops forever")
            .output("text", "text", "never produced")
            .build()
    }

    fn run(_ctx: &Context, _inputs: &Inputs, _config: &Config) -> Result<Outputs, StageError> {
        let mut turns: u64 = 0;
        loop {
            // Opaque to the optimiser, so the loop stays a loop that does work.
            turns = std::hint::black_box(turns.wrapping_add(1));
        }
    }
}

export_plugin!(Spin);
