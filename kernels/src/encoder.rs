//! The text encoder: all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT) on the CubeCL kernels, with
//! mean pooling and L2 normalisation, as sentence-transformers runs it.
//!
//! Texts are tokenised with the model's own `tokenizer.json` (lowercasing WordPiece), truncated
//! to 256 tokens as the model's `max_seq_length` says, and batched with dynamic padding: a batch
//! is padded to its longest text, and texts are sorted by token count first so batches waste little.

use std::path::Path;

use cubecl::prelude::*;
use cubecl::server::Handle;
use safetensors::SafeTensors;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::compute::{Then, Weight};
use crate::layers::Norm;
use crate::{Compute, KernelError, ops};

/// The model's shape, read from the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderConfig {
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub max_positions: usize,
    pub vocab: usize,
}

/// Texts longer than this many tokens (with `[CLS]` and `[SEP]`) are cut, as the model does.
pub const MAX_TOKENS: usize = 256;

/// Sequences in a batch are padded to a multiple of this many tokens.
const PAD_TO: usize = 16;

/// Texts encoded per launch sequence: bounds device memory and keeps padding per batch small.
pub const DEFAULT_BATCH: usize = 32;

const LAYER_NORM_EPS: f32 = 1e-12;

struct Layer {
    /// Query, key and value projections, each `[hidden, hidden]` (transposed from PyTorch's).
    q: (Weight, Handle),
    k: (Weight, Handle),
    v: (Weight, Handle),
    attn_out: Weight,
    attn_out_bias: Handle,
    attn_norm: (Handle, Handle),
    up: Weight,
    up_bias: Handle,
    down: Weight,
    down_bias: Handle,
    out_norm: (Handle, Handle),
}

/// all-MiniLM-L6-v2, weights resident on the compute device.
pub struct Encoder {
    compute: &'static Compute,
    tokenizer: Tokenizer,
    config: EncoderConfig,
    word: Handle,
    position: Handle,
    token_type: Handle,
    embed_norm: (Handle, Handle),
    layers: Vec<Layer>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").field("config", &self.config).field("backend", &self.compute.backend()).finish()
    }
}

/// Token ids and attention masks of a batch, padded to its longest text rounded up to a
/// multiple of 16 tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub ids: Vec<u32>,
    pub mask: Vec<u32>,
    pub seq_len: usize,
}

impl Batch {
    /// Texts' token ids padded to the longest, rounded up to a multiple of 16 tokens:
    /// attention then scores 16 keys per vector (a few padding tokens cost less than narrow
    /// vectors).
    pub fn padded<'a>(texts: impl Iterator<Item = &'a [u32]> + Clone) -> Batch {
        let seq_len = texts.clone().map(<[u32]>::len).max().unwrap_or(0).max(1).next_multiple_of(PAD_TO);
        let mut batch = Batch { ids: Vec::new(), mask: Vec::new(), seq_len };
        for row in texts {
            batch.ids.extend_from_slice(row);
            batch.ids.extend(std::iter::repeat_n(0, seq_len - row.len()));
            batch.mask.extend(std::iter::repeat_n(1, row.len()));
            batch.mask.extend(std::iter::repeat_n(0, seq_len - row.len()));
        }
        batch
    }
}

impl Encoder {
    /// Loads `model.safetensors` and `tokenizer.json` from `dir` onto `compute`.
    pub fn load(dir: &Path, compute: &'static Compute) -> Result<Encoder, KernelError> {
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| KernelError::Model(format!("{}: {e}", dir.join("tokenizer.json").display())))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| KernelError::Model(format!("tokenizer truncation: {e}")))?;
        tokenizer.with_padding(None);

        let path = dir.join("model.safetensors");
        let bytes = std::fs::read(&path).map_err(|e| KernelError::Model(format!("{}: {e}", path.display())))?;
        let tensors =
            SafeTensors::deserialize(&bytes).map_err(|e| KernelError::Model(format!("{}: {e}", path.display())))?;
        let weights = Weights { tensors: &tensors, path: &path };

        let (vocab, hidden) = weights.shape2("embeddings.word_embeddings.weight")?;
        let (max_positions, _) = weights.shape2("embeddings.position_embeddings.weight")?;
        let mut layers = 0;
        while tensors.tensor(&format!("encoder.layer.{layers}.attention.self.query.weight")).is_ok() {
            layers += 1;
        }
        let (intermediate, _) = weights.shape2("encoder.layer.0.intermediate.dense.weight")?;
        // MiniLM-L6-H384 has 12 heads of 32; the weights do not record it.
        let heads = hidden / 32;
        let config = EncoderConfig { hidden, intermediate, layers, heads, max_positions, vocab };
        if layers == 0 || hidden % heads != 0 {
            return Err(KernelError::Model(format!("{}: not a BERT encoder ({config:?})", path.display())));
        }

        let up = |name: &str| -> Result<Handle, KernelError> { Ok(compute.upload_f32(&weights.vector(name)?)) };
        let norm = |prefix: &str| -> Result<(Handle, Handle), KernelError> {
            Ok((up(&format!("{prefix}.weight"))?, up(&format!("{prefix}.bias"))?))
        };
        let linear = |name: &str| -> Result<Weight, KernelError> {
            let (n, k) = weights.shape2(name)?;
            Ok(compute.weight(&weights.transposed(name)?, k, n))
        };

        let mut stack = Vec::with_capacity(layers);
        for l in 0..layers {
            let p = format!("encoder.layer.{l}");
            let projection = |name: &str| -> Result<(Weight, Handle), KernelError> {
                Ok((
                    linear(&format!("{p}.attention.self.{name}.weight"))?,
                    up(&format!("{p}.attention.self.{name}.bias"))?,
                ))
            };
            stack.push(Layer {
                q: projection("query")?,
                k: projection("key")?,
                v: projection("value")?,
                attn_out: linear(&format!("{p}.attention.output.dense.weight"))?,
                attn_out_bias: up(&format!("{p}.attention.output.dense.bias"))?,
                attn_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                up: linear(&format!("{p}.intermediate.dense.weight"))?,
                up_bias: up(&format!("{p}.intermediate.dense.bias"))?,
                down: linear(&format!("{p}.output.dense.weight"))?,
                down_bias: up(&format!("{p}.output.dense.bias"))?,
                out_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Encoder {
            compute,
            tokenizer,
            config,
            word: up("embeddings.word_embeddings.weight")?,
            position: up("embeddings.position_embeddings.weight")?,
            token_type: up("embeddings.token_type_embeddings.weight")?,
            embed_norm: norm("embeddings.LayerNorm")?,
            layers: stack,
        })
    }

    pub fn config(&self) -> EncoderConfig {
        self.config
    }

    /// Width of the embeddings.
    pub fn dim(&self) -> usize {
        self.config.hidden
    }

    /// Token ids of one text, with `[CLS]`/`[SEP]`, truncated to [`MAX_TOKENS`].
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, KernelError> {
        let encoding = self.tokenizer.encode(text, true).map_err(|e| KernelError::Model(format!("tokenizer: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Token ids of each of `texts` (as [`Encoder::token_ids`]), tokenised in parallel.
    pub fn token_ids_many(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, KernelError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| KernelError::Model(format!("tokenizer: {e}")))?;
        Ok(encodings.iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// Token ids of `texts`, padded to the longest.
    pub fn batch(&self, texts: &[&str]) -> Result<Batch, KernelError> {
        let ids = self.token_ids_many(texts)?;
        Ok(Batch::padded(ids.iter().map(Vec::as_slice)))
    }

    /// One L2-normalised embedding per text, in order, batching [`DEFAULT_BATCH`] texts at a
    /// time (fewest tokens first, so each batch pads little).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, KernelError> {
        self.embed_batched(texts, DEFAULT_BATCH)
    }

    pub fn embed_batched(&self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>, KernelError> {
        // All texts are tokenised first, on every core, while the kernels' workers are idle;
        // sorting by token count then groups texts of nearly equal length.
        let ids = self.token_ids_many(texts)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(batch_size.max(1)) {
            let batch = Batch::padded(chunk.iter().map(|&i| ids[i].as_slice()));
            let flat = self.forward(&batch)?;
            for (slot, row) in chunk.iter().zip(flat.chunks_exact(self.config.hidden)) {
                out[*slot] = row.to_vec();
            }
        }
        Ok(out)
    }

    /// The encoder on one padded batch: `n × hidden` normalised sentence embeddings.
    pub fn forward(&self, batch: &Batch) -> Result<Vec<f32>, KernelError> {
        let c = self.compute;
        let cfg = self.config;
        let (h, seq_len) = (cfg.hidden, batch.seq_len);
        let n = batch.ids.len() / seq_len;
        let rows = n * seq_len;
        if n == 0 {
            return Ok(Vec::new());
        }
        if seq_len > cfg.max_positions {
            return Err(KernelError::Shape(format!("{seq_len} tokens exceed the model's {}", cfg.max_positions)));
        }
        if let Some(bad) = batch.ids.iter().find(|&&id| id as usize >= cfg.vocab) {
            return Err(KernelError::Shape(format!("token id {bad} outside the vocabulary of {}", cfg.vocab)));
        }
        let client = c.client();
        let ids = c.upload_u32(&batch.ids);
        let mask = c.upload_u32(&batch.mask);
        let hidden = c.empty_f32(rows * h);
        let (count, dim) = c.grid(rows);
        // SAFETY (every launch below): the kernels bound their indices by the row counts and
        // widths passed with the buffers, which are sized from the same numbers.
        unsafe {
            ops::embed_layer_norm::launch_unchecked(
                client,
                count,
                dim,
                BufferArg::from_raw_parts(ids, rows),
                BufferArg::from_raw_parts(self.word.clone(), cfg.vocab * h),
                BufferArg::from_raw_parts(self.position.clone(), cfg.max_positions * h),
                BufferArg::from_raw_parts(self.token_type.clone(), h),
                BufferArg::from_raw_parts(self.embed_norm.0.clone(), h),
                BufferArg::from_raw_parts(self.embed_norm.1.clone(), h),
                BufferArg::from_raw_parts(hidden.clone(), rows * h),
                rows as u32,
                seq_len as u32,
                h as u32,
                LAYER_NORM_EPS,
            )
        };
        for layer in &self.layers {
            let project = |(weight, bias): &(Weight, Handle)| c.linear(&hidden, weight, Then::Bias(bias), rows);
            let (q, k, v) = (project(&layer.q)?, project(&layer.k)?, project(&layer.v)?);
            let context = c.attention(&q, &k, &v, &mask, n, seq_len, cfg.heads, h / cfg.heads);
            let projected = c.linear(&context, &layer.attn_out, Then::Nothing, rows)?;
            c.residual_layer_norm(&projected, &layer.attn_out_bias, &hidden, norm(&layer.attn_norm), rows, h);
            let inner = c.linear(&hidden, &layer.up, Then::BiasGelu(&layer.up_bias), rows)?;
            let down = c.linear(&inner, &layer.down, Then::Nothing, rows)?;
            c.residual_layer_norm(&down, &layer.down_bias, &hidden, norm(&layer.out_norm), rows, h);
        }
        let pooled = c.empty_f32(n * h);
        let (pcount, pdim) = c.grid(n);
        unsafe {
            ops::mean_pool_normalize::launch_unchecked(
                client,
                pcount,
                pdim,
                BufferArg::from_raw_parts(hidden, rows * h),
                BufferArg::from_raw_parts(mask, rows),
                BufferArg::from_raw_parts(pooled.clone(), n * h),
                n as u32,
                seq_len as u32,
                h as u32,
            )
        };
        c.read_f32(pooled)
    }
}

/// A LayerNorm's weights, with BERT's epsilon.
fn norm((gamma, beta): &(Handle, Handle)) -> Norm<'_> {
    Norm { gamma, beta, eps: LAYER_NORM_EPS }
}

/// Typed access to the safetensors file, with errors naming the tensor.
struct Weights<'a> {
    tensors: &'a SafeTensors<'a>,
    path: &'a Path,
}

impl Weights<'_> {
    fn get(&self, name: &str) -> Result<safetensors::tensor::TensorView<'_>, KernelError> {
        let view = self
            .tensors
            .tensor(name)
            .map_err(|e| KernelError::Model(format!("{}: tensor `{name}`: {e}", self.path.display())))?;
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(KernelError::Model(format!(
                "{}: tensor `{name}` is {:?}, expected F32",
                self.path.display(),
                view.dtype()
            )));
        }
        Ok(view)
    }

    fn shape2(&self, name: &str) -> Result<(usize, usize), KernelError> {
        match self.get(name)?.shape() {
            [a, b] => Ok((*a, *b)),
            other => Err(KernelError::Model(format!("{}: tensor `{name}` has shape {other:?}", self.path.display()))),
        }
    }

    fn vector(&self, name: &str) -> Result<Vec<f32>, KernelError> {
        let view = self.get(name)?;
        Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    /// A PyTorch `Linear` weight (`[out, in]`) as the row-major `[in, out]` matrix the GEMM
    /// multiplies by.
    fn transposed(&self, name: &str) -> Result<Vec<f32>, KernelError> {
        let (rows, cols) = self.shape2(name)?;
        let data = self.vector(name)?;
        let mut t = vec![0.0; data.len()];
        for r in 0..rows {
            for c in 0..cols {
                t[c * rows + r] = data[r * cols + c];
            }
        }
        Ok(t)
    }
}

impl Encoder {
    /// The process-wide MiniLM on the process-wide device: fetches the weights on first use
    /// ([`crate::models::ensure`]) and loads them once.
    pub fn shared() -> Result<&'static Encoder, KernelError> {
        use std::sync::OnceLock;
        static SHARED: OnceLock<Result<Encoder, KernelError>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let files =
                    crate::models::ensure(&crate::models::MINILM).map_err(|e| KernelError::Model(e.to_string()))?;
                Encoder::load(files.dir(), Compute::shared()?)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sentence-transformers' own outputs for five sentences (a copy of the shared `minilm_reference.json`).
    fn reference() -> serde_json::Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/minilm_reference.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    fn floats(v: &serde_json::Value) -> Vec<f32> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
    }

    #[test]
    fn matches_sentence_transformers_on_every_backend() {
        let files = crate::models::ensure(&crate::models::MINILM).unwrap();
        let reference = reference();
        let sentences: Vec<&str> =
            reference["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        for compute in crate::tests::devices() {
            let encoder = Encoder::load(files.dir(), compute).unwrap();
            for (s, ids) in sentences.iter().zip(reference["input_ids"].as_array().unwrap()) {
                let want: Vec<u32> = ids.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
                assert_eq!(encoder.token_ids(s).unwrap(), want, "token ids of {s:?}");
            }
            // All five in one padded batch, so padding and masking are exercised too; then in
            // batches of two, which must come back in input order all the same.
            for batch in [DEFAULT_BATCH, 2] {
                let got = encoder.embed_batched(&sentences, batch).unwrap();
                for (i, want) in reference["embeddings_normalized"].as_array().unwrap().iter().enumerate() {
                    let want = floats(want);
                    let cosine: f32 = got[i].iter().zip(&want).map(|(a, b)| a * b).sum();
                    assert!(
                        cosine >= 0.999,
                        "{}: batches of {batch}: sentence {i}: cosine {cosine}",
                        compute.backend()
                    );
                }
            }
        }
    }

    #[test]
    fn truncates_long_texts_to_the_model_limit() {
        let files = crate::models::ensure(&crate::models::MINILM).unwrap();
        let encoder = Encoder::load(files.dir(), crate::tests::devices()[0]).unwrap();
        let long = "personalization ".repeat(400);
        assert_eq!(encoder.token_ids(&long).unwrap().len(), MAX_TOKENS);
        let e = encoder.embed(&[&long, "short"]).unwrap();
        assert_eq!(e.len(), 2);
        let norm: f32 = e[0].iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn empty_input_gives_no_embeddings() {
        let files = crate::models::ensure(&crate::models::MINILM).unwrap();
        let encoder = Encoder::load(files.dir(), crate::tests::devices()[0]).unwrap();
        assert!(encoder.embed(&[]).unwrap().is_empty());
        assert_eq!(encoder.embed(&[""]).unwrap()[0].len(), 384);
    }
}
