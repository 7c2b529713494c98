//! `tailor fmt`: rewrite pipeline files in the canonical layout.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tailor_dsl::fmt::format_source;

use crate::{Outcome, files};

pub fn run(paths: &[PathBuf], check: bool) -> anyhow::Result<Outcome> {
    if paths.len() == 1 && paths[0] == Path::new("-") {
        let mut src = String::new();
        std::io::stdin().read_to_string(&mut src).context("reading stdin")?;
        return match format_source(&src) {
            Ok(formatted) => {
                std::io::stdout().write_all(formatted.as_bytes())?;
                Ok(if check && formatted != src { Outcome::Failed } else { Outcome::Ok })
            }
            Err(e) => {
                eprintln!("error: <stdin>: {e}");
                Ok(Outcome::ConfigErrors)
            }
        };
    }
    let default = [PathBuf::from(".")];
    let paths = files::collect(if paths.is_empty() { &default } else { paths })?;
    let mut outcome = Outcome::Ok;
    for path in paths {
        let file = files::read(&path)?;
        let formatted = match format_source(file.text()) {
            Ok(f) => f,
            Err(e) => {
                // A file that does not parse cannot be formatted; `tailor check` explains why.
                eprintln!("error: {}: {e} (run `tailor check` for details)", path.display());
                outcome = Outcome::ConfigErrors;
                continue;
            }
        };
        if formatted == file.text() {
            continue;
        }
        if check {
            println!("would reformat {}", path.display());
            if !matches!(outcome, Outcome::ConfigErrors) {
                outcome = Outcome::Failed;
            }
        } else {
            std::fs::write(&path, formatted).with_context(|| format!("writing {}", path.display()))?;
            println!("formatted {}", path.display());
        }
    }
    Ok(outcome)
}
