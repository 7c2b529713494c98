//! `tailor embed TEXT...`: sentence embeddings from the built-in encoder (all-MiniLM-L6-v2 on
//! the CubeCL kernels), printed as one JSON array holding one array of floats per text.

use std::io::Write as _;

use anyhow::Context as _;
use tailor_kernels::Encoder;

use crate::Outcome;

pub fn run(texts: &[String]) -> anyhow::Result<Outcome> {
    let encoder = Encoder::shared().context("loading the text encoder")?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let embeddings = encoder.embed(&refs).context("embedding")?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &embeddings)?;
    writeln!(out)?;
    Ok(Outcome::Ok)
}
