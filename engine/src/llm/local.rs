//! The embedded LLM: SmolLM2-135M-Instruct (GGUF, Q4_1) run in process by candle's quantized
//! llama, with the tokenizer rebuilt from the GGUF metadata (byte-level BPE, digits split one by
//! one, the ChatML control tokens kept whole) and the model's ChatML chat template. Sampling
//! honours temperature, top-p, max tokens, stop strings and a seed; `n` candidates are `n`
//! generations with seeds `seed`, `seed + 1`, …
//!
//! Structured output (`json_schema`) is constrained decoding: llguidance turns the schema into
//! a grammar and, before each token is sampled, masks every token the grammar cannot take next,
//! so the reply always parses and satisfies the schema (or is reported as cut off).
//!
//! Generation is CPU work: it runs on blocking threads, one per request, each with its own
//! copy of the (shared, immutable) weights and its own KV cache.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::ModelWeights;
use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{ApproximateTokEnv, TokRxInfo, TokTrie};
use llguidance::{Matcher, ParserFactory};
use tokenizers::Tokenizer;

use super::{Llm, LlmError, Piece, TokenStream};
use crate::host::services::{Complete, Completion, CompletionRequest, Role, ServiceError};

/// Prompt tokens the local model accepts at most (its context is 8,192; longer prompts would
/// be slow on a CPU and are refused rather than cut).
pub const MAX_PROMPT_TOKENS: usize = 4096;

/// The system message SmolLM2's template adds when a conversation has none.
const DEFAULT_SYSTEM: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// The local model.
#[derive(Clone)]
pub struct LocalLlm {
    weights: ModelWeights,
    tokenizer: Arc<Tokenizer>,
    end_of_turn: u32,
    name: String,
    /// The grammar engine over this vocabulary, built on the first structured request.
    guidance: Arc<OnceLock<Result<ParserFactory, String>>>,
}

impl std::fmt::Debug for LocalLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLlm").field("name", &self.name).finish()
    }
}

fn model_error(what: &str, e: impl std::fmt::Display) -> LlmError {
    LlmError::Malformed(format!("local model: {what}: {e}"))
}

impl LocalLlm {
    /// Loads a llama-architecture GGUF file with a `gpt2` (byte-level BPE) tokenizer.
    pub fn load(gguf: &Path) -> Result<LocalLlm, LlmError> {
        let shown = gguf.display().to_string();
        let mut file = std::fs::File::open(gguf).map_err(|e| model_error(&shown, e))?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| model_error(&shown, e))?;
        let tokenizer = tokenizer_from_gguf(&content).map_err(|e| model_error(&format!("{shown}: tokenizer"), e))?;
        let end_of_turn = tokenizer
            .token_to_id("<|im_end|>")
            .ok_or_else(|| model_error(&shown, "the vocabulary has no <|im_end|> token"))?;
        let weights = ModelWeights::from_gguf(content, &mut file, &Device::Cpu).map_err(|e| model_error(&shown, e))?;
        let name = gguf.file_stem().map_or_else(|| "local".into(), |s| s.to_string_lossy().into_owned());
        Ok(LocalLlm { weights, tokenizer: Arc::new(tokenizer), end_of_turn, name, guidance: Arc::default() })
    }

    /// The catalogue's SmolLM2, fetched on first use.
    pub fn smollm2() -> Result<LocalLlm, LlmError> {
        let files = tailor_kernels::models::ensure(&tailor_kernels::models::SMOLLM2)
            .map_err(|e| model_error("fetching SmolLM2", e))?;
        LocalLlm::load(&files.dir().join("SmolLM2-135M-Instruct.Q4_1.gguf"))
    }

    /// The prompt in SmolLM2's chat template, ending with the assistant's turn.
    pub fn prompt(request: &CompletionRequest) -> String {
        let mut out = String::new();
        if request.messages.first().is_none_or(|m| m.role != Role::System) {
            out.push_str(&format!("<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n"));
        }
        for m in &request.messages {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            out.push_str(&format!("<|im_start|>{role}\n{}<|im_end|>\n", m.content));
        }
        out.push_str("<|im_start|>assistant\n");
        out
    }

    /// A matcher for `schema` over this model's vocabulary, the end of the assistant's turn
    /// standing for the end of the text.
    fn matcher(&self, schema: &str) -> Result<Matcher, LlmError> {
        let factory = self
            .guidance
            .get_or_init(|| {
                let json: serde_json::Value =
                    serde_json::from_str(&self.tokenizer.to_string(false).map_err(|e| e.to_string())?)
                        .map_err(|e| e.to_string())?;
                let words = llguidance::token_bytes_from_tokenizer_json(&json).map_err(|e| e.to_string())?;
                let info = TokRxInfo::new(words.len() as u32, self.end_of_turn);
                let env = Arc::new(ApproximateTokEnv::new(TokTrie::from(&info, &words)));
                let mut factory = ParserFactory::new_simple(&(env as _)).map_err(|e| e.to_string())?;
                factory.quiet();
                Ok(factory)
            })
            .as_ref()
            .map_err(|e| model_error("structured output", e))?;
        let mut schema: serde_json::Value = serde_json::from_str(schema)
            .map_err(|e| LlmError::InvalidRequest(format!("the JSON schema is not JSON: {e}")))?;
        // A small model left free to add whitespace can spend its whole budget on it: replies are
        // compact JSON unless the schema asks otherwise.
        if let Some(object) = schema.as_object_mut() {
            object.entry("x-guidance").or_insert_with(
                || serde_json::json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "}),
            );
        }
        let parser = factory
            .create_parser(TopLevelGrammar::from_json_schema(schema))
            .map_err(|e| LlmError::InvalidRequest(format!("the JSON schema cannot be followed: {e}")))?;
        Ok(Matcher::new(Ok(parser)))
    }

    /// Generates one candidate, calling `piece` with each new piece of text.
    fn generate_one(
        &self,
        prompt: &[u32],
        request: &CompletionRequest,
        seed: u64,
        mut piece: impl FnMut(&str) -> bool,
    ) -> Result<(String, u32), LlmError> {
        let mut matcher = request.json_schema.as_deref().map(|schema| self.matcher(schema)).transpose()?;
        let mut weights = self.weights.clone();
        let temperature = f64::from(request.temperature);
        let sampling = if temperature <= 1e-6 {
            Sampling::ArgMax
        } else if request.top_p > 0.0 && request.top_p < 1.0 {
            Sampling::TopP { p: f64::from(request.top_p), temperature }
        } else {
            Sampling::All { temperature }
        };
        let mut sampler = LogitsProcessor::from_sampling(seed, sampling);
        let mut tokens: Vec<u32> = Vec::new();
        let mut text = String::new();
        let mut input = prompt.to_vec();
        let mut pos = 0usize;
        while tokens.len() < request.max_tokens as usize {
            let x = Tensor::new(input.as_slice(), &Device::Cpu)
                .and_then(|t| t.unsqueeze(0))
                .map_err(|e| model_error("input", e))?;
            let logits = weights.forward(&x, pos).and_then(|l| l.squeeze(0)).map_err(|e| model_error("forward", e))?;
            pos += input.len();
            let logits = match matcher.as_mut() {
                Some(m) => {
                    if m.is_stopped() {
                        break;
                    }
                    constrain(m, logits)?
                }
                None => logits,
            };
            let next = sampler.sample(&logits).map_err(|e| model_error("sampling", e))?;
            if next == self.end_of_turn {
                break;
            }
            if let Some(m) = matcher.as_mut() {
                m.consume_token(next).map_err(|e| model_error("structured output", e))?;
            }
            tokens.push(next);
            let decoded = self.tokenizer.decode(&tokens, true).map_err(|e| model_error("decoding", e))?;
            // Bytes of a character split across tokens decode to U+FFFD until it is whole.
            if !decoded.ends_with('\u{FFFD}') && decoded.len() > text.len() && decoded.starts_with(&text) {
                let new = decoded[text.len()..].to_owned();
                text = decoded;
                if let Some(cut) = request.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
                    text.truncate(cut);
                    break;
                }
                if !piece(&new) {
                    break;
                }
            }
            input = vec![next];
        }
        if let Some(e) = matcher.as_ref().and_then(Matcher::get_error) {
            return Err(model_error("structured output", e));
        }
        if let Some(m) = matcher.as_mut()
            && !m.is_stopped()
            && !m.is_accepting().map_err(|e| model_error("structured output", e))?
        {
            return Err(LlmError::Truncated { max_tokens: request.max_tokens });
        }
        Ok((text, tokens.len() as u32))
    }

    fn encode(&self, request: &CompletionRequest) -> Result<Vec<u32>, LlmError> {
        if request.n == 0 {
            return Err(LlmError::InvalidRequest("`n` must be at least 1".into()));
        }
        let prompt = LocalLlm::prompt(request);
        let ids = self.tokenizer.encode(prompt, false).map_err(|e| model_error("encoding", e))?.get_ids().to_vec();
        if ids.len() > MAX_PROMPT_TOKENS {
            return Err(LlmError::InvalidRequest(format!(
                "the prompt has {} tokens; the local model takes at most {MAX_PROMPT_TOKENS}",
                ids.len()
            )));
        }
        Ok(ids)
    }
}

/// `logits` with every token `matcher` cannot take next set to −∞.
fn constrain(matcher: &mut Matcher, logits: Tensor) -> Result<Tensor, LlmError> {
    let mask = matcher.compute_mask().map_err(|e| model_error("structured output", e))?;
    let mut values = logits.to_vec1::<f32>().map_err(|e| model_error("logits", e))?;
    for (token, value) in values.iter_mut().enumerate() {
        if !mask.is_allowed(token as u32) {
            *value = f32::NEG_INFINITY;
        }
    }
    let n = values.len();
    Tensor::from_vec(values, n, &Device::Cpu).map_err(|e| model_error("logits", e))
}

/// The tokenizer a `gpt2`-model GGUF file describes: its vocabulary and merges as a byte-level
/// BPE, digits split one by one (SmolLM's pre-tokenizer), and every control token (type 3) as a
/// special token matched whole.
fn tokenizer_from_gguf(content: &gguf_file::Content) -> Result<Tokenizer, String> {
    use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::digits::Digits;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    use tokenizers::{AddedToken, PreTokenizerWrapper};

    let get = |key: &str| content.metadata.get(key).ok_or_else(|| format!("no `{key}` in the metadata"));
    let model = get("tokenizer.ggml.model")?.to_string().map_err(|e| e.to_string())?;
    if model != "gpt2" {
        return Err(format!("tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`)"));
    }
    let tokens: Vec<String> = get("tokenizer.ggml.tokens")?
        .to_vec()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|v| v.to_string().cloned().map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let merges: Vec<(String, String)> = get("tokenizer.ggml.merges")?
        .to_vec()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|v| {
            let m = v.to_string().map_err(|e| e.to_string())?;
            m.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned())).ok_or_else(|| format!("bad merge `{m}`"))
        })
        .collect::<Result<_, _>>()?;
    let types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v.to_vec().map_err(|e| e.to_string())?.iter().map(|t| t.to_i32().unwrap_or(1)).collect(),
        None => Vec::new(),
    };
    let vocab: tokenizers::models::bpe::Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let bpe = BPE::builder().vocab_and_merges(vocab, merges).build().map_err(|e| e.to_string())?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
        PreTokenizerWrapper::Digits(Digits::new(true)),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ])));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(types.iter().copied().chain(std::iter::repeat(1)))
        .filter(|(_, ty)| *ty == 3)
        .map(|(t, _)| AddedToken::from(t.clone(), true))
        .collect();
    tokenizer.add_special_tokens(specials).map_err(|e| e.to_string())?;
    Ok(tokenizer)
}

#[async_trait]
impl Llm for LocalLlm {
    fn name(&self) -> String {
        format!("local:{}", self.name)
    }

    async fn generate(&self, request: CompletionRequest) -> Result<Completion, LlmError> {
        let llm = self.clone();
        tokio::task::spawn_blocking(move || {
            let prompt = llm.encode(&request)?;
            let seed = request.seed.unwrap_or_else(|| fastrand::u64(..));
            let mut texts = Vec::with_capacity(request.n as usize);
            let mut completion_tokens = 0u32;
            for i in 0..request.n {
                let (text, used) = llm.generate_one(&prompt, &request, seed.wrapping_add(u64::from(i)), |_| true)?;
                texts.push(text);
                completion_tokens += used;
            }
            Ok(Completion { texts, prompt_tokens: prompt.len() as u32, completion_tokens })
        })
        .await
        .map_err(|e| model_error("generation task", e))?
    }

    async fn stream(&self, request: CompletionRequest) -> Result<TokenStream, LlmError> {
        let prompt = self.encode(&request)?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Piece, LlmError>>(64);
        let llm = self.clone();
        tokio::task::spawn_blocking(move || {
            let seed = request.seed.unwrap_or_else(|| fastrand::u64(..));
            // A dropped receiver (the client went away) stops generation at the next token.
            let sent = llm.generate_one(&prompt, &request, seed, |piece| {
                tx.blocking_send(Ok(Piece::Text(piece.to_owned()))).is_ok()
            });
            let last = match sent {
                Ok((_, used)) => Ok(Piece::Usage { prompt_tokens: prompt.len() as u32, completion_tokens: used }),
                Err(e) => Err(e),
            };
            let _ = tx.blocking_send(last);
        });
        Ok(Box::pin(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })))
    }
}

#[async_trait]
impl Complete for LocalLlm {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, ServiceError> {
        Ok(self.generate(request).await?)
    }
}

/// SmolLM2, loaded (and fetched, the first time) when first called: a process that never asks
/// the LLM anything never pays for it.
#[derive(Default)]
pub struct LazyLocal {
    model: tokio::sync::OnceCell<Result<LocalLlm, LlmError>>,
}

impl LazyLocal {
    pub async fn get(&self) -> Result<&LocalLlm, LlmError> {
        self.model
            .get_or_init(|| async {
                tokio::task::spawn_blocking(LocalLlm::smollm2)
                    .await
                    .unwrap_or_else(|e| Err(model_error("loading task", e)))
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }
}

#[async_trait]
impl Llm for LazyLocal {
    fn name(&self) -> String {
        "local:SmolLM2-135M-Instruct".into()
    }

    async fn generate(&self, request: CompletionRequest) -> Result<Completion, LlmError> {
        self.get().await?.generate(request).await
    }

    async fn stream(&self, request: CompletionRequest) -> Result<TokenStream, LlmError> {
        self.get().await?.stream(request).await
    }
}

#[async_trait]
impl Complete for LazyLocal {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, ServiceError> {
        Ok(self.generate(request).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::services::Message;

    fn request(user: &str, max_tokens: u32) -> CompletionRequest {
        CompletionRequest {
            messages: vec![Message { role: Role::User, content: user.into() }],
            n: 1,
            max_tokens,
            temperature: 0.0,
            top_p: 1.0,
            stop: Vec::new(),
            seed: Some(1),
            json_schema: None,
        }
    }

    fn model() -> &'static LocalLlm {
        static MODEL: std::sync::OnceLock<LocalLlm> = std::sync::OnceLock::new();
        MODEL.get_or_init(|| LocalLlm::smollm2().expect("SmolLM2 loads"))
    }

    #[test]
    fn the_tokenizer_keeps_control_tokens_whole_and_round_trips() {
        let llm = model();
        let prompt = LocalLlm::prompt(&request("What is 12 + 30?", 8));
        assert!(prompt.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"));
        let ids = llm.tokenizer.encode(prompt.as_str(), false).unwrap().get_ids().to_vec();
        assert_eq!(ids[0], 1, "<|im_start|> is one token");
        assert!(ids.contains(&llm.end_of_turn));
        let digits: Vec<String> = llm.tokenizer.encode("12", false).unwrap().get_tokens().to_vec();
        assert_eq!(digits, ["1", "2"], "digits are split one by one");
        assert_eq!(llm.tokenizer.decode(&ids, false).unwrap(), prompt);
    }

    #[test]
    fn greedy_generation_is_deterministic_and_stops() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let llm = model();
        let a = rt.block_on(llm.generate(request("Name a color.", 12))).unwrap();
        let b = rt.block_on(llm.generate(request("Name a color.", 12))).unwrap();
        assert_eq!(a.texts, b.texts);
        assert!(!a.texts[0].trim().is_empty());
        assert!(a.completion_tokens <= 12 && a.prompt_tokens > 10);
        let mut stopped = request("Count from 1 to 20, separated by commas.", 40);
        stopped.stop = vec![",".into()];
        let c = rt.block_on(llm.generate(stopped)).unwrap();
        assert!(!c.texts[0].contains(','), "{:?}", c.texts[0]);
        let mut sampled = request("Name a fruit.", 8);
        (sampled.n, sampled.temperature, sampled.top_p) = (2, 0.9, 0.95);
        let d = rt.block_on(llm.generate(sampled)).unwrap();
        assert_eq!(d.texts.len(), 2);
        use futures_util::StreamExt as _;
        let pieces: Vec<String> = rt.block_on(async {
            llm.stream(request("Name a color.", 12))
                .await
                .unwrap()
                .filter_map(|p| async move { p.unwrap().text().map(str::to_owned) })
                .collect()
                .await
        });
        assert_eq!(pieces.concat(), a.texts[0], "a stream carries the same text");
    }

    #[test]
    fn structured_output_follows_the_schema() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let llm = model();
        let ask = |prompt: &str, schema: &str, max_tokens: u32| {
            let mut r = request(prompt, max_tokens);
            r.json_schema = Some(schema.into());
            rt.block_on(llm.generate(r))
        };
        let digit =
            ask("How many stars (1 to 5) for: great sound, battery died?", r#"{"enum": [1, 2, 3, 4, 5]}"#, 4).unwrap();
        let value: serde_json::Value = serde_json::from_str(&digit.texts[0]).unwrap();
        assert!((1..=5).contains(&value.as_i64().unwrap()), "{:?}", digit.texts);
        let schema = r#"{"type": "object", "properties": {"color": {"type": "string", "maxLength": 12},
            "sure": {"type": "boolean"}}, "required": ["color", "sure"], "additionalProperties": false}"#;
        let object = ask("Name a color.", schema, 40).unwrap();
        let value: serde_json::Value = serde_json::from_str(&object.texts[0]).unwrap();
        assert!(value["color"].is_string() && value["sure"].is_boolean(), "{:?}", object.texts);
        assert_eq!(ask("Name a color.", schema, 3), Err(LlmError::Truncated { max_tokens: 3 }));
        assert!(matches!(ask("Name a color.", "{not json", 8), Err(LlmError::InvalidRequest(_))));
        assert!(matches!(ask("Name a color.", r#"{"type": "no-such-type"}"#, 8), Err(LlmError::InvalidRequest(_))));
    }
}
