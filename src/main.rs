//! The `tailor` command: arguments, exit codes, and a call into the library for each command.
//!
//! Exit codes: 0 success; 1 the command could not do its work (unreadable file, `fmt --check`
//! found unformatted files); 2 a pipeline file has errors.

mod cmd;
mod files;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "tailor", version, about = "LLM personalization pipelines: check, format and draw pipeline files")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check pipeline files: every error at once, with where and why.
    Check {
        /// Pipeline files, or directories searched for `*.kdl` files.
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
        /// `human` for people, `json` for editors and scripts.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Format pipeline files in place in the canonical layout (`-` reads stdin, writes stdout).
    Fmt {
        /// Pipeline files or directories (default: the current directory).
        paths: Vec<std::path::PathBuf>,
        /// Change nothing; exit 1 if a file is not formatted.
        #[arg(long)]
        check: bool,
    },
    /// Draw a pipeline's stage graph.
    Graph {
        /// The pipeline file.
        file: std::path::PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
        /// Which pipeline, when the file holds several.
        #[arg(long)]
        pipeline: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

/// How a command ended, when it did not simply succeed.
#[derive(Debug)]
pub enum Outcome {
    Ok,
    /// A pipeline file has errors (exit 2).
    ConfigErrors,
    /// The command found a problem it reported itself (exit 1).
    Failed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { paths, format } => cmd::check::run(&paths, format),
        Command::Fmt { paths, check } => cmd::fmt::run(&paths, check),
        Command::Graph { file, format, pipeline } => cmd::graph::run(&file, format, pipeline.as_deref()),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::ConfigErrors) => ExitCode::from(2),
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
