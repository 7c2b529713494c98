//! Launches of the encoder's layer kernels ([`crate::ops`]), shared by the encoder and the
//! tests: each picks the vector width for its rows and sizes the launch.

use cubecl::prelude::*;
use cubecl::server::Handle;

use crate::compute::{Backend, Compute};
use crate::ops;

/// Query tokens per unit of [`ops::attention`] (when the sequence length allows): each key and
/// value vector loaded then serves four queries. Chosen by timing 1, 2, 4 and 8 on 32 sequences
/// of 256 tokens on the CPU runtime: four took about 0.55× the time of one; eight was no faster.
const ATTENTION_QUERIES: usize = 4;

/// Query tokens per block of [`ops::attention_rows`] (the CPU runtime's attention): its two
/// tiles hold `rows × 2` accumulators each, of 32 vector registers, and 8 divides every
/// length that is a multiple of 16.
const ATTENTION_ROWS: usize = 8;

/// Weights and shape of one LayerNorm.
pub(crate) struct Norm<'a> {
    pub gamma: &'a Handle,
    pub beta: &'a Handle,
    pub eps: f32,
}

impl Compute {
    /// The widest vector to move rows of `len` floats in: 16 lanes (one AVX-512 register) on
    /// the CPU runtime, 4 on GPUs (one 128-bit load); always a divisor of `len`.
    pub(crate) fn row_vector_width(&self, len: usize) -> usize {
        let max = match self.backend() {
            Backend::Cpu => 16,
            Backend::Wgpu | Backend::Cuda => 4,
        };
        [16, 8, 4, 2].into_iter().filter(|w| *w <= max).find(|w| len.is_multiple_of(*w)).unwrap_or(1)
    }

    /// `x[r, c] += bias[c]` for `rows × cols` floats.
    pub(crate) fn add_bias(&self, x: &Handle, bias: &Handle, rows: usize, cols: usize) {
        let w = self.row_vector_width(cols);
        let (count, dim) = self.grid(rows);
        // SAFETY: the kernel bounds rows by `rows`; `x` holds rows × cols and `bias` cols floats.
        unsafe {
            ops::add_bias::launch_unchecked(
                self.client(),
                count,
                dim,
                w,
                BufferArg::from_raw_parts(x.clone(), rows * cols / w),
                BufferArg::from_raw_parts(bias.clone(), cols / w),
                rows as u32,
                (cols / w) as u32,
            )
        }
    }

    /// `x[r, c] = gelu(x[r, c] + bias[c])` for `rows × cols` floats.
    pub(crate) fn add_bias_gelu(&self, x: &Handle, bias: &Handle, rows: usize, cols: usize) {
        let w = self.row_vector_width(cols);
        let (count, dim) = self.grid(rows);
        // SAFETY: as in `add_bias`.
        unsafe {
            ops::add_bias_gelu::launch_unchecked(
                self.client(),
                count,
                dim,
                w,
                BufferArg::from_raw_parts(x.clone(), rows * cols / w),
                BufferArg::from_raw_parts(bias.clone(), cols / w),
                rows as u32,
                (cols / w) as u32,
            )
        }
    }

    /// `residual = LayerNorm(residual + x + bias)` over `rows × h` floats.
    pub(crate) fn residual_layer_norm(
        &self,
        x: &Handle,
        bias: &Handle,
        residual: &Handle,
        norm: Norm<'_>,
        rows: usize,
        h: usize,
    ) {
        let w = self.row_vector_width(h);
        let (count, dim) = self.grid(rows);
        // SAFETY: the kernel bounds rows by `rows`; every buffer holds rows × h or h floats.
        unsafe {
            ops::add_bias_residual_layer_norm::launch_unchecked(
                self.client(),
                count,
                dim,
                w,
                BufferArg::from_raw_parts(x.clone(), rows * h / w),
                BufferArg::from_raw_parts(bias.clone(), h / w),
                BufferArg::from_raw_parts(residual.clone(), rows * h / w),
                BufferArg::from_raw_parts(norm.gamma.clone(), h / w),
                BufferArg::from_raw_parts(norm.beta.clone(), h / w),
                rows as u32,
                (h / w) as u32,
                norm.eps,
            )
        }
    }

    /// Masked multi-head self-attention of `n` sequences of `seq_len` tokens; `q`, `k`, `v`
    /// and the result are `[n * seq_len, heads * head_dim]`. Keys are first laid out by
    /// [`ops::attention_keys`]; the vector width divides both `seq_len` and `head_dim` (the
    /// encoder pads sequences to a multiple of 16 so that it is wide).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn attention(
        &self,
        q: &Handle,
        k: &Handle,
        v: &Handle,
        mask: &Handle,
        n: usize,
        seq_len: usize,
        heads: usize,
        head_dim: usize,
    ) -> Handle {
        let rows = n * seq_len;
        let width = heads * head_dim;
        let w = self.row_vector_width(gcd(seq_len, head_dim));
        let kt = self.empty_f32(rows * width);
        let bias = self.empty_f32(rows);
        let out = self.empty_f32(rows * width);
        let (count, dim) = self.grid(n * heads * head_dim);
        // SAFETY: the kernel bounds its units by n × heads × head_dim; `k` and `kt` hold
        // rows × width floats, `mask` and `bias` rows.
        unsafe {
            ops::attention_keys::launch_unchecked(
                self.client(),
                count,
                dim,
                BufferArg::from_raw_parts(k.clone(), rows * width),
                BufferArg::from_raw_parts(mask.clone(), rows),
                BufferArg::from_raw_parts(kt.clone(), rows * width),
                BufferArg::from_raw_parts(bias.clone(), rows),
                n as u32,
                seq_len as u32,
                heads as u32,
                head_dim as u32,
            )
        };
        // SAFETY: every buffer passed here holds `rows * width` floats (`bias` rows), read in
        // vectors of `w`, which divides both `seq_len` and `head_dim`.
        let vectors = |h: &Handle, len: usize| unsafe { BufferArg::from_raw_parts(h.clone(), len / w) };
        if self.backend() == Backend::Cpu && w == 16 && head_dim.is_multiple_of(w) {
            // The score buffer's size is compiled in: one kernel per power of two of key vectors.
            let capacity = (seq_len / w).next_power_of_two();
            let (count, dim) = self.per_core(n * heads);
            // SAFETY: the kernel's units take disjoint shares of the n × heads (sequence, head)
            // pairs, and each index stays within its pair's rows of the layouts above.
            unsafe {
                ops::attention_rows::launch_unchecked(
                    self.client(),
                    count,
                    dim,
                    w,
                    BufferArg::from_raw_parts(q.clone(), rows * width),
                    vectors(&kt, rows * width),
                    vectors(v, rows * width),
                    vectors(&bias, rows),
                    vectors(&out, rows * width),
                    n as u32,
                    seq_len as u32,
                    heads as u32,
                    1.0 / (head_dim as f32).sqrt(),
                    head_dim,
                    head_dim / w,
                    ATTENTION_ROWS,
                    capacity,
                )
            };
            return out;
        }
        let queries = [ATTENTION_QUERIES, 2, 1].into_iter().find(|q| seq_len.is_multiple_of(*q)).unwrap_or(1);
        let (count, dim) = self.grid(n * heads * seq_len / queries);
        // SAFETY: the kernel bounds its units by n × heads × seq_len and indexes within the
        // layouts above.
        unsafe {
            ops::attention::launch_unchecked(
                self.client(),
                count,
                dim,
                w,
                BufferArg::from_raw_parts(q.clone(), rows * width),
                vectors(&kt, rows * width),
                vectors(v, rows * width),
                vectors(&bias, rows),
                vectors(&out, rows * width),
                n as u32,
                seq_len as u32,
                heads as u32,
                1.0 / (head_dim as f32).sqrt(),
                head_dim,
                head_dim / w,
                queries,
            )
        };
        out
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}
