//! The embedded model's speed on this machine: SmolLM2-135M-Instruct (GGUF Q4_1) in process.
//!
//! Measures prompt processing (prefill) and generation (decode) in tokens per second for three
//! configurations in the same run:
//! - `q4_1`: the weights as the file stores them, candle's quantized matmuls (the baseline);
//! - `f32`: the weights dequantized to f32 at load (`CANDLE_DEQUANTIZE_ALL`, what `tailor` does);
//! - `f32 + schema`: the same, decoding under a JSON Schema (llguidance's token mask each step).
//!
//! Run with `cargo bench --bench llm`.

use std::time::{Duration, Instant};

use tailor_engine::host::services::{CompletionRequest, Message, Role};
use tailor_engine::llm::{Llm, LlmError, LocalLlm};

const REPEATS: usize = 3;
const DECODE_TOKENS: u32 = 64;

fn request(max_tokens: u32, schema: Option<&str>) -> CompletionRequest {
    let history = (1..=12)
        .map(|i| {
            format!(
                "- Review {i}: the headphones were comfortable but the battery lasted {i} hours; shipping was slow."
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    CompletionRequest {
        messages: vec![
            Message { role: Role::System, content: "You write long, detailed product descriptions.".into() },
            Message {
                role: Role::User,
                content: format!("{history}\n\nWrite a long description of wireless headphones for this shopper."),
            },
        ],
        n: 1,
        max_tokens,
        temperature: 0.0,
        top_p: 1.0,
        stop: Vec::new(),
        seed: Some(1),
        json_schema: schema.map(str::to_owned),
    }
}

/// Loads the model on a fresh thread: candle reads `CANDLE_DEQUANTIZE_ALL` once per thread.
fn load(dequantize: bool) -> LocalLlm {
    // SAFETY: no other thread of this process reads or writes the environment while this runs
    // (the loading thread starts after it).
    unsafe {
        if dequantize {
            std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1");
        } else {
            std::env::remove_var("CANDLE_DEQUANTIZE_ALL");
        }
    }
    std::thread::spawn(|| LocalLlm::smollm2().expect("SmolLM2 loads")).join().unwrap()
}

struct Speed {
    prefill: f64,
    decode: f64,
    prompt_tokens: u32,
    decoded: u32,
}

fn measure(rt: &tokio::runtime::Runtime, llm: &LocalLlm, schema: Option<&str>) -> Speed {
    // (elapsed, prompt tokens, new tokens); a reply the token limit cut off counts as the limit.
    let timed = |max_tokens, schema: Option<&str>| {
        let start = Instant::now();
        match rt.block_on(llm.generate(request(max_tokens, schema))) {
            Ok(done) => (start.elapsed(), done.prompt_tokens, done.completion_tokens),
            Err(LlmError::Truncated { max_tokens }) => (start.elapsed(), 0, max_tokens),
            Err(e) => panic!("generation failed: {e}"),
        }
    };
    let mut prefills = Vec::new();
    let mut decodes = Vec::new();
    let (mut prompt_tokens, mut decoded) = (0, 0);
    for _ in 0..REPEATS {
        // The prompt is processed the same way with or without a schema.
        let (first, prompt, _) = timed(1, None);
        let (all, _, new) = timed(DECODE_TOKENS, schema);
        prompt_tokens = prompt;
        decoded = new;
        prefills.push(f64::from(prompt) / first.as_secs_f64());
        let rest = all.saturating_sub(first).max(Duration::from_micros(1));
        decodes.push(f64::from(new.saturating_sub(1)) / rest.as_secs_f64());
    }
    Speed { prefill: median(prefills), decode: median(decodes), prompt_tokens, decoded }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quantized = load(false);
    let dequantized = load(true);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let schema = r#"{"type": "object", "properties": {"title": {"type": "string"}, "description": {"type": "string"},
        "features": {"type": "array", "items": {"type": "string"}}}, "required": ["title", "description", "features"]}"#;
    let runs = [
        ("q4_1", measure(&rt, &quantized, None)),
        ("f32", measure(&rt, &dequantized, None)),
        ("f32 + schema", measure(&rt, &dequantized, Some(schema))),
    ];
    println!("median of {REPEATS}; greedy decoding, up to {DECODE_TOKENS} new tokens\n");
    println!("{:<14} {:>16} {:>16} {:>10}", "weights", "prefill tok/s", "decode tok/s", "decoded");
    for (name, s) in &runs {
        println!("{name:<14} {:>9.0} ({:>4}) {:>16.1} {:>10}", s.prefill, s.prompt_tokens, s.decode, s.decoded);
    }
    let base = &runs[0].1;
    println!(
        "\nf32 vs q4_1: prefill {:.2}×, decode {:.2}×; schema vs free decode: {:.2}×",
        runs[1].1.prefill / base.prefill,
        runs[1].1.decode / base.decode,
        runs[2].1.decode / runs[1].1.decode
    );
}
