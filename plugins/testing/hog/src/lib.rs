//! `test:hog`: allocates memory in chunks and writes to every page of it (1 GiB by default),
//! keeping it all. The host's memory limit must stop it: the failed allocation aborts the
//! instance with "memory allocation of N bytes failed" on stderr.

use tailor_plugin_sdk::prelude::*;

const CHUNK: usize = 16 << 20;
const PAGE: usize = 4096;

pub struct Hog;

impl Plugin for Hog {
    fn describe() -> Descriptor {
        Descriptor::builder("test:hog", env!("CARGO_PKG_VERSION"), StageKind::Generator)
            .summary("allocates and touches a lot of memory")
            .output("bytes", "number", "how much it held, if it survived")
            .config(ConfigField::integer("mib", 1.0, 4096.0).default(1024.0).doc("how many MiB to allocate"))
            .build()
    }

    fn run(_ctx: &Context, _inputs: &Inputs, config: &Config) -> Result<Outputs, StageError> {
        let total = config.integer("mib")? as usize * (1 << 20);
        let mut held: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0usize;
        while bytes < total {
            let mut chunk = vec![0u8; CHUNK];
            for page in chunk.iter_mut().step_by(PAGE) {
                *page = 1;
            }
            held.push(std::hint::black_box(chunk));
            bytes += CHUNK;
        }
        Ok(Outputs::new().number("bytes", bytes as f64))
    }
}

export_plugin!(Hog);
