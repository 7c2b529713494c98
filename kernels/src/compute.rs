//! The compute device: which CubeCL runtime runs the kernels, chosen at run time, and the
//! launches every caller shares (matrix products, scoring, top-k).

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use cubecl::config::autotune::AutotuneLevel;
use cubecl::prelude::*;
use cubecl::server::Handle;
use cubecl::std::tensor::TensorHandle;
use cubek::matmul::definition::MatmulElems;
use cubek::matmul::multi_level::Strategy as MultiLevelStrategy;
use cubek::matmul::multi_level::routines::TileSizeSelection;
use cubek::matmul::multi_level::routines::batch::double_unit::DoubleUnitSelectionArgs;
use cubek::matmul::routine::BlueprintStrategy as MatmulBlueprint;
use cubek::matmul::strategy::Strategy as MatmulStrategy;
use cubek::reduce::components::instructions::ReduceOperationConfig;
use cubek::reduce::launch::{RoutineStrategy, VectorizationStrategy};
use cubek::reduce::routines::BlueprintStrategy;
use cubek::reduce::routines::cube::CubeStrategy;
use cubek::reduce::routines::unit::UnitStrategy;
use cubek::reduce::{ReduceDtypes, ReduceStrategy};
use cubek::std::InputBinding;

use crate::KernelError;
use crate::ops;

/// A CubeCL runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The CPU runtime (LLVM JIT): machines without a GPU.
    Cpu,
    /// wgpu on Vulkan (Mesa's lavapipe where there is no GPU).
    Wgpu,
    /// NVIDIA GPUs; only in builds with the `cuda` feature.
    Cuda,
}

impl Backend {
    /// The backends this build links.
    pub fn compiled() -> Vec<Backend> {
        let mut all = Vec::new();
        if cfg!(feature = "cuda") {
            all.push(Backend::Cuda);
        }
        if cfg!(feature = "cpu") {
            all.push(Backend::Cpu);
        }
        if cfg!(feature = "wgpu") {
            all.push(Backend::Wgpu);
        }
        all
    }

    /// `TAILOR_BACKEND` when set, else CUDA when built in and a GPU is present, else the CPU.
    pub fn from_env() -> Result<Backend, KernelError> {
        match std::env::var("TAILOR_BACKEND") {
            Ok(name) if !name.is_empty() => name.parse(),
            _ => {
                let gpu = cfg!(feature = "cuda")
                    && cubecl::Device::enumerate_all().iter().any(|d| matches!(d, cubecl::Device::Cuda(_)));
                Ok(if gpu { Backend::Cuda } else { Backend::Cpu })
            }
        }
    }

    fn device(self) -> Result<cubecl::Device, KernelError> {
        let unavailable = |e: cubecl::device::DeviceUnavailable| KernelError::Unavailable(self, e.to_string());
        match self {
            Backend::Cpu => cubecl::Device::cpu().map_err(unavailable),
            Backend::Wgpu => cubecl::Device::wgpu(Default::default()).map_err(unavailable),
            Backend::Cuda => cubecl::Device::cuda(0).map_err(unavailable),
        }
    }
}

impl FromStr for Backend {
    type Err = KernelError;
    fn from_str(s: &str) -> Result<Backend, KernelError> {
        match s {
            "cpu" => Ok(Backend::Cpu),
            "wgpu" => Ok(Backend::Wgpu),
            "cuda" => Ok(Backend::Cuda),
            other => Err(KernelError::UnknownBackend(other.to_owned())),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Cpu => "cpu",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        })
    }
}

/// Item bytes one buffer of a resident matrix holds at most: under wgpu's 128 MiB buffer cap
/// there, and [`LARGE_BUFFER_BYTES`] on the CPU runtime and CUDA, which have no such cap.
const WGPU_BUFFER_BYTES: usize = 96 << 20;
const LARGE_BUFFER_BYTES: usize = 4 << 30;

/// Item bytes one launch of a kernel that writes scores out covers at most on the CPU runtime
/// and wgpu: the score matrix of one chunk then stays in a CPU's cache. On the CPU these chunks
/// are views into one buffer, because the lanes kernel, which writes no scores, runs best over
/// the whole buffer in one launch: there 16 queries over 1M × 384 items ran at 46–53 GB/s,
/// against 42–45 GB/s in chunks of 96 MiB (the units wait for the host between launches, and each
/// launch starts their streams and prefetches cold), while the row kernel for one query ran up to
/// 1.7× slower in one launch whenever memory was slow, probably as its 4 MB of scores left the
/// cache. On CUDA a chunk is scored in a few tens of µs, less than a launch and read-back, so
/// there a chunk is a whole buffer.
const SCORE_CHUNK_BYTES: usize = 96 << 20;

/// [`ops::gemm`]'s tiling on the CPU runtime: a unit computes `rows × cols` vectors of
/// `GEMM_VECTOR` floats (one AVX-512 register each) in registers, 8 × 3 when the width allows
/// ([`gemm_tile`]), and a cube takes `GEMM_GROUP` row tiles of one column strip. Chosen with
/// `cargo bench --bench gemm` on the encoder's shapes (8192 × 384 × 384, × 1536 and 1536 × 384)
/// over tiles of 4 × 4, 6 × 4, 8 × 3, 12 × 2 and 14 × 2 vectors and groups of 8 to 64.
const GEMM_VECTOR: usize = 16;
const GEMM_GROUP: usize = 16;

/// [`ops::gemm`]'s tile (rows, vectors per column strip) for an `n`-wide product on the CPU
/// runtime: 24 accumulators (of 32 vector registers) where the width allows; `None` when `n` is
/// not a whole number of vectors.
fn gemm_tile(n: usize) -> Option<(usize, usize)> {
    if n == 0 || !n.is_multiple_of(GEMM_VECTOR) {
        return None;
    }
    let vectors = n / GEMM_VECTOR;
    [(8, 3), (6, 4), (12, 2), (12, 1)].into_iter().find(|(_, cols)| vectors.is_multiple_of(*cols))
}

/// A row-major `k × n` matrix as [`ops::gemm`] reads it: in column strips `strip` floats wide,
/// each strip's `k` rows contiguous.
pub(crate) fn pack_strips(row_major: &[f32], k: usize, n: usize, strip: usize) -> Vec<f32> {
    let mut packed = Vec::with_capacity(k * n);
    for s in 0..n / strip {
        for row in row_major.chunks_exact(n).take(k) {
            packed.extend_from_slice(&row[s * strip..(s + 1) * strip]);
        }
    }
    packed
}

/// A `k × n` matrix that [`Compute::linear`] multiplies by (a layer's weights), uploaded once in
/// the layout its product reads: column strips for the CPU runtime's [`ops::gemm`]
/// ([`pack_strips`]), row-major for cubek's matmul.
pub(crate) struct Weight {
    handle: Handle,
    k: usize,
    n: usize,
    /// [`ops::gemm`]'s tile when packed for it.
    tile: Option<(usize, usize)>,
}

/// What [`Compute::linear`] does after the product, per output row (a bias holds `n` floats).
#[derive(Clone, Copy)]
pub(crate) enum Then<'a> {
    Nothing,
    Bias(&'a Handle),
    /// The bias, then exact GELU (BERT's feed-forward layer).
    BiasGelu(&'a Handle),
}

/// Score rows are cut into pieces this long for top-k: each piece's maximum is taken on the
/// device, and only the pieces that can hold a top-k score are gathered and read back
/// ([`Compute::top_k_prefiltered`]): short pieces make those few to read, long enough that the
/// maxima are few too. (The CPU runtime took cubek's unit arg-top-k over pieces of 4,096 until
/// a test of NaN scores showed it returning wrong rows; this way was as fast there.)
const TOP_K_PIECE: usize = 256;

/// The top-k piece for a chunk of `rows` scores, and the chunk's score rows padded to whole
/// pieces.
fn top_k_pieces(rows: usize) -> (usize, usize) {
    let piece = TOP_K_PIECE.min(rows);
    (piece, rows.div_ceil(piece) * piece)
}

/// Planes (rows in flight) per cube of the GPU scoring kernel, and the most cubes one launch
/// asks for (a few waves on the largest GPUs; the kernel's grid-stride loop does the rest).
const PLANES_PER_CUBE: u32 = 8;
const MAX_SCORE_CUBES: usize = 65_535;

/// From this many queries at once, the CPU runtime scores with [`ScoreKernel::Lanes`] (fewer
/// leave most of its 16 lanes empty; one query is bound by memory either way).
const LANES_MIN_QUERIES: usize = 4;
/// Queries per vector of [`ops::dot_scores_lanes`] (one AVX-512 register of f32).
const LANES_TILE: usize = 16;
/// Item rows per step of [`ops::dot_scores_lanes`]: 8 accumulators, and per dimension 9 loads
/// for 8 multiply-adds.
const LANES_ITEMS: usize = 8;
/// Item bytes a unit of [`ops::dot_top_k_lanes`] takes at a time from a shared counter (8,192
/// rows of 384 floats). Units that split the rows in fixed halves finished 2–9% of the run apart
/// on a 2-vCPU VM (a C loop of the same shape), one idle while the other worked; with blocks the
/// gap is at most one block's time.
const LANES_BLOCK_BYTES: usize = 12 << 20;

/// From this many queries at once, GPUs score with [`ScoreKernel::Blocked`].
const BLOCKED_MIN_QUERIES: usize = 4;
/// Item rows per cube (and units per cube) of [`ops::dot_scores_blocked`], and dimensions per
/// slice of its shared-memory stage: 128 × 33 floats plus the queries' slice, about 19 KB
/// (lavapipe allows 32 KB a cube).
const BLOCKED_ROWS: usize = 128;
const BLOCKED_SLICE: usize = 32;

/// The kernels that score queries against resident items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreKernel {
    /// A unit per run of item rows ([`ops::dot_scores`]): every runtime.
    Rows,
    /// A plane (warp) per item row, coalesced loads ([`ops::dot_scores_plane`]): runtimes with
    /// plane operations and a fixed plane size (CUDA).
    Planes,
    /// Lanes over queries, a run of item rows at a time ([`ops::dot_scores_lanes`]): no
    /// horizontal sums, the items read once; for top-k the selection is fused in
    /// ([`ops::dot_top_k_lanes`]), so no score is written out. What the CPU runtime uses for
    /// several queries.
    Lanes,
    /// A cube per block of item rows against a tile of 16 queries, in the shape of a matrix
    /// product ([`ops::dot_scores_blocked`]): the block is staged in shared memory with
    /// coalesced loads, and a unit computes 2 rows × 8 queries in registers. What GPUs use for
    /// several queries.
    Blocked,
}

/// Item vectors resident on a device: in buffers that respect the runtime's buffer cap, and
/// seen as chunks that one launch scores.
pub struct DeviceMatrix {
    dim: usize,
    rows: usize,
    /// The buffers as uploaded, with their rows: where the lanes kernel runs, one launch each.
    pub(crate) buffers: Vec<(Handle, usize)>,
    /// The launches of the kernels that write scores out, with their rows: views into
    /// `buffers`, in order, none across two buffers.
    pub(crate) chunks: Vec<(Handle, usize)>,
}

impl DeviceMatrix {
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn dim(&self) -> usize {
        self.dim
    }
}

impl fmt::Debug for DeviceMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceMatrix").field("rows", &self.rows).field("dim", &self.dim).finish()
    }
}

/// A client of one runtime, with the launches Tailor uses. Kernels compile on first use and
/// stay compiled for the life of the process (CubeCL caches them per client).
pub struct Compute {
    backend: Backend,
    client: Client,
    max_units: u32,
}

impl fmt::Debug for Compute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compute").field("backend", &self.backend).field("max_units", &self.max_units).finish()
    }
}

impl Compute {
    pub fn new(backend: Backend) -> Result<Compute, KernelError> {
        if !Backend::compiled().contains(&backend) {
            return Err(KernelError::Unavailable(backend, "this build does not include it".into()));
        }
        let device = backend.device()?;
        let client = std::panic::catch_unwind(|| device.client())
            .map_err(|_| KernelError::Unavailable(backend, "the runtime failed to start".into()))?;
        let max_units = client.properties().hardware.max_units_per_cube.clamp(1, 256);
        Ok(Compute { backend, client, max_units })
    }

    /// The process-wide device of [`Backend::from_env`], started on first use.
    pub fn shared() -> Result<&'static Compute, KernelError> {
        static SHARED: OnceLock<Result<Compute, KernelError>> = OnceLock::new();
        SHARED.get_or_init(|| Compute::new(Backend::from_env()?)).as_ref().map_err(Clone::clone)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// How cubek's reductions run here: the unit strategy on the CPU runtime, the cube strategy
    /// elsewhere (the unit strategy returned wrong results on wgpu, DESIGN.md §4).
    fn reduce_strategy(&self) -> ReduceStrategy {
        let routine = match self.backend {
            Backend::Cpu => RoutineStrategy::Unit(BlueprintStrategy::Inferred(UnitStrategy)),
            _ => RoutineStrategy::Cube(BlueprintStrategy::Inferred(CubeStrategy { use_planes: false })),
        };
        ReduceStrategy {
            routine,
            vectorization: VectorizationStrategy { parallel_output_vectorization: false },
            autotune_level: AutotuneLevel::Balanced,
        }
    }

    /// The plane (warp) size the plane kernels launch with: GPUs whose runtime has plane
    /// operations and one fixed plane size. `None` on the CPU runtime, which runs the
    /// row-per-unit kernels instead.
    fn plane_size(&self) -> Option<u32> {
        if self.backend == Backend::Cpu {
            return None;
        }
        let props = self.client.properties();
        let hw = &props.hardware;
        let ops = props.features.plane.contains(cubecl::features::Plane::Ops);
        (ops && hw.plane_size_min == hw.plane_size_max && hw.plane_size_min > 1).then_some(hw.plane_size_min)
    }

    /// One cube of a unit per core (at most `work` units). The CPU runtime runs each unit
    /// position of a cube as one task that walks every cube in turn, so kernels that order
    /// their own work (`gemm`, `attention_rows`, `dot_scores_lanes`) launch this and give each
    /// unit `UNIT_POS_X` of `CUBE_DIM_X` its share.
    pub(crate) fn per_core(&self, work: usize) -> (CubeCount, CubeDim) {
        let units = (self.max_units as usize).min(work).max(1);
        (CubeCount::Static(1, 1, 1), CubeDim::new_1d(units as u32))
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn upload_f32(&self, data: &[f32]) -> Handle {
        self.client.create_from_slice(f32::as_bytes(data))
    }

    pub(crate) fn upload_u32(&self, data: &[u32]) -> Handle {
        self.client.create_from_slice(u32::as_bytes(data))
    }

    pub(crate) fn empty_f32(&self, len: usize) -> Handle {
        self.client.empty(len.max(1) * size_of::<f32>())
    }

    pub(crate) fn read_f32(&self, handle: Handle) -> Result<Vec<f32>, KernelError> {
        let bytes = self.client.read_one(handle).map_err(|e| KernelError::Runtime(format!("{e:?}")))?;
        Ok(f32::from_bytes(&bytes).to_vec())
    }

    fn read_u32(&self, handle: Handle) -> Result<Vec<u32>, KernelError> {
        let bytes = self.client.read_one(handle).map_err(|e| KernelError::Runtime(format!("{e:?}")))?;
        Ok(u32::from_bytes(&bytes).to_vec())
    }

    /// A 1-D launch of `units` units (at least one cube).
    pub(crate) fn grid(&self, units: usize) -> (CubeCount, CubeDim) {
        let per_cube = self.max_units.min(units.max(1) as u32);
        let cubes = units.max(1).div_ceil(per_cube as usize) as u32;
        (CubeCount::Static(cubes, 1, 1), CubeDim::new_1d(per_cube))
    }

    /// `matrix` (row-major, `k × n`) on the device as [`Compute::linear`] reads it.
    pub(crate) fn weight(&self, matrix: &[f32], k: usize, n: usize) -> Weight {
        assert_eq!(matrix.len(), k * n, "a {k} × {n} weight");
        match gemm_tile(n).filter(|_| self.backend == Backend::Cpu && k > 0) {
            Some(tile) => {
                let handle = self.upload_f32(&pack_strips(matrix, k, n, tile.1 * GEMM_VECTOR));
                Weight { handle, k, n, tile: Some(tile) }
            }
            None => Weight { handle: self.upload_f32(matrix), k, n, tile: None },
        }
    }

    /// `out = lhs · weight`, then `then`; `lhs` and `out` row-major, `lhs` `m` rows of the
    /// weight's `k`.
    ///
    /// On the CPU runtime, for widths of whole vectors, this is [`ops::gemm`] with the bias and
    /// GELU applied while the tile is in registers (`cargo bench --bench gemm` compares it with
    /// cubek's CPU GEMM on the encoder's shapes). Otherwise cubek's matmul (its CPU-tuned
    /// strategy on the CPU runtime, where the automatic choice is pathologically slow; a
    /// full-precision register-tiled one on GPUs) followed by the bias/GELU kernel.
    pub(crate) fn linear(
        &self,
        lhs: &Handle,
        weight: &Weight,
        then: Then<'_>,
        m: usize,
    ) -> Result<Handle, KernelError> {
        let (k, n) = (weight.k, weight.n);
        match weight.tile {
            Some(tile) if m > 0 => Ok(self.gemm(lhs, weight, tile, then, m)),
            _ => self.cubek_linear(lhs, &weight.handle, then, m, k, n),
        }
    }

    /// [`Compute::linear`] by cubek's matmul, then the bias/GELU kernel.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn cubek_linear(
        &self,
        lhs: &Handle,
        rhs: &Handle,
        then: Then<'_>,
        m: usize,
        k: usize,
        n: usize,
    ) -> Result<Handle, KernelError> {
        let dtype = f32::elem_type_native();
        // Contiguous, as the caller reads it: `TensorHandle::empty` may pitch rows (CUDA does).
        let out = TensorHandle::new_contiguous(vec![m, n], self.empty_f32(m * n), dtype);
        let lhs = TensorHandle::new_contiguous(vec![m, k], lhs.clone(), dtype);
        let rhs = TensorHandle::new_contiguous(vec![k, n], rhs.clone(), dtype);
        let strategy = match self.backend {
            Backend::Cpu => MatmulStrategy::Tiled(cubek::matmul::tiled::Strategy::CpuGemm(Default::default())),
            // Not `Auto`: on GPUs with tensor cores it picks a tensor-core routine, which rounds
            // f32 inputs to TF32 (10-bit mantissa; errors near 1e-3 on the encoder's layers).
            // The register-tiled unit routine keeps full f32, like the reference and PyTorch.
            _ => MatmulStrategy::MultiLevel(MultiLevelStrategy::DoubleUnit(MatmulBlueprint::Inferred(
                DoubleUnitSelectionArgs { tile_size: TileSizeSelection::MaxTileSize },
            ))),
        };
        cubek::matmul::launch::launch_ref(
            &strategy,
            &self.client,
            InputBinding::Normal(lhs.binding(), dtype),
            InputBinding::Normal(rhs.binding(), dtype),
            out.clone().binding(),
            &mut MatmulElems::from_single_dtype(dtype),
        )
        .map_err(|e| KernelError::Runtime(format!("matmul {m}×{k}×{n}: {e:?}")))?;
        match then {
            Then::Nothing => {}
            Then::Bias(bias) => self.add_bias(&out.handle, bias, m, n),
            Then::BiasGelu(bias) => self.add_bias_gelu(&out.handle, bias, m, n),
        }
        Ok(out.handle)
    }

    /// Seconds per `m × k × n` product with bias and GELU (the encoder's feed-forward layer),
    /// median of `reps`, by [`Compute::linear`] and by cubek's matmul with the separate
    /// bias/GELU kernel, on random inputs: for `benches/gemm.rs`.
    #[doc(hidden)]
    pub fn time_linear(&self, m: usize, k: usize, n: usize, reps: usize) -> Result<(f64, f64), KernelError> {
        let floats = |len: usize| (0..len).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect::<Vec<f32>>();
        let matrix = floats(k * n);
        let (lhs, weight, row_major, bias) = (
            self.upload_f32(&floats(m * k)),
            self.weight(&matrix, k, n),
            self.upload_f32(&matrix),
            self.upload_f32(&floats(n)),
        );
        let ours = || self.linear(&lhs, &weight, Then::BiasGelu(&bias), m);
        let cubek = || self.cubek_linear(&lhs, &row_major, Then::BiasGelu(&bias), m, k, n);
        let timed = |f: &dyn Fn() -> Result<Handle, KernelError>| -> Result<f64, KernelError> {
            let start = std::time::Instant::now();
            // Waits for the product without reading it back: the encoder never reads these.
            let _out = f()?;
            cubecl::future::block_on(self.client.sync()).map_err(|e| KernelError::Runtime(format!("{e:?}")))?;
            Ok(start.elapsed().as_secs_f64())
        };
        // Warm-up (compiles both), then the two paths alternate so that drift in the machine's
        // speed hits both alike.
        timed(&ours)?;
        timed(&cubek)?;
        let (mut a, mut b) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
        for _ in 0..reps.max(1) {
            a.push(timed(&ours)?);
            b.push(timed(&cubek)?);
        }
        let median = |mut times: Vec<f64>| {
            times.sort_by(f64::total_cmp);
            times[times.len() / 2]
        };
        let (ours, cubek) = (median(a), median(b));
        Ok((ours, cubek))
    }

    /// [`ops::gemm`] with `weight` packed for `tile`. Fewer rows than a tile take one row per
    /// unit (the kernel's last tile ends at row `m`).
    fn gemm(&self, lhs: &Handle, weight: &Weight, (rows, cols): (usize, usize), then: Then<'_>, m: usize) -> Handle {
        let (k, n, w) = (weight.k, weight.n, GEMM_VECTOR);
        let rows = if m >= rows { rows } else { 1 };
        let out = self.empty_f32(m * n);
        let (count, dim) = self.per_core(m.div_ceil(rows).div_ceil(GEMM_GROUP));
        // Without a bias the kernel never reads it; the weight stands in as a valid buffer.
        let (epilogue, bias, bias_len) = match then {
            Then::Nothing => (ops::EPILOGUE_NONE, &weight.handle, k * n),
            Then::Bias(b) => (ops::EPILOGUE_BIAS, b, n),
            Then::BiasGelu(b) => (ops::EPILOGUE_BIAS_GELU, b, n),
        };
        // SAFETY: the kernel's row tiles end by row `m` (which is at least `rows`) and its strips
        // by column `n`; `lhs` holds m × k floats, the weight k × n, `bias` n (when read), `out`
        // m × n.
        unsafe {
            ops::gemm::launch_unchecked(
                self.client(),
                count,
                dim,
                w,
                BufferArg::from_raw_parts(lhs.clone(), m * k),
                BufferArg::from_raw_parts(weight.handle.clone(), k * n / w),
                BufferArg::from_raw_parts(bias.clone(), bias_len / w),
                BufferArg::from_raw_parts(out.clone(), m * n / w),
                m as u32,
                k as u32,
                (n / w) as u32,
                rows,
                cols,
                GEMM_GROUP,
                epilogue,
            )
        };
        out
    }

    /// Item embeddings copied to the device once, to be scored many times.
    pub fn upload_matrix(&self, items: &[f32], dim: usize) -> Result<DeviceMatrix, KernelError> {
        let row_bytes = dim.max(1) * 4;
        let (buffer, chunk) = match self.backend {
            Backend::Wgpu => (WGPU_BUFFER_BYTES, WGPU_BUFFER_BYTES),
            Backend::Cpu => (LARGE_BUFFER_BYTES, SCORE_CHUNK_BYTES),
            Backend::Cuda => (LARGE_BUFFER_BYTES, LARGE_BUFFER_BYTES),
        };
        self.upload_matrix_chunked(items, dim, (buffer / row_bytes).max(1), (chunk / row_bytes).max(1))
    }

    /// [`Compute::upload_matrix`] in buffers of `buffer_rows` rows, scored in chunks of at most
    /// `chunk_rows` rows (views into the buffers where a buffer holds more).
    pub(crate) fn upload_matrix_chunked(
        &self,
        items: &[f32],
        dim: usize,
        buffer_rows: usize,
        chunk_rows: usize,
    ) -> Result<DeviceMatrix, KernelError> {
        let (_, rows) = check_shapes(&[], items, dim)?;
        let buffers: Vec<(Handle, usize)> = (0..rows)
            .step_by(buffer_rows.max(1))
            .map(|start| {
                let n = buffer_rows.min(rows - start);
                (self.upload_f32(&items[start * dim..(start + n) * dim]), n)
            })
            .collect();
        let row_bytes = (dim * 4) as u64;
        let chunks = buffers
            .iter()
            .flat_map(|(buffer, n)| {
                let n = *n;
                (0..n).step_by(chunk_rows.max(1)).map(move |start| {
                    let m = chunk_rows.min(n - start);
                    if m == n {
                        return (buffer.clone(), n);
                    }
                    let view = buffer
                        .clone()
                        .offset_start(start as u64 * row_bytes)
                        .offset_end((n - start - m) as u64 * row_bytes);
                    (view, m)
                })
            })
            .collect();
        Ok(DeviceMatrix { dim, rows, buffers, chunks })
    }

    /// Dot-product scores of every query against every item: `out[q * n + i]`.
    /// `queries` and `items` are row-major with rows of `dim` floats.
    pub fn dot_scores(&self, queries: &[f32], items: &[f32], dim: usize) -> Result<Vec<f32>, KernelError> {
        let (nq, n) = check_shapes(queries, items, dim)?;
        let matrix = self.upload_matrix(items, dim)?;
        let kernel = self.score_kernel(nq);
        let q = self.upload_queries(queries, dim, kernel);
        let mut per_query: Vec<Vec<f32>> = vec![Vec::with_capacity(n); nq];
        for (chunk, rows) in &matrix.chunks {
            let scores = self.read_f32(self.scores_chunk(&q, nq, chunk, *rows, *rows, dim, kernel))?;
            for (qi, row) in scores.chunks_exact(*rows).enumerate() {
                per_query[qi].extend_from_slice(row);
            }
        }
        Ok(per_query.concat())
    }

    /// The `k` best items by dot product for each query, best first.
    pub fn top_k_dot(
        &self,
        queries: &[f32],
        items: &[f32],
        dim: usize,
        k: usize,
    ) -> Result<Vec<Vec<(u32, f32)>>, KernelError> {
        check_shapes(queries, items, dim)?;
        self.top_k_resident(queries, &self.upload_matrix(items, dim)?, k)
    }

    /// [`Compute::top_k_dot`] against a matrix already on the device, with the scoring kernel
    /// this device runs best for that many queries ([`Compute::score_kernel`]).
    pub fn top_k_resident(
        &self,
        queries: &[f32],
        items: &DeviceMatrix,
        k: usize,
    ) -> Result<Vec<Vec<(u32, f32)>>, KernelError> {
        let nq = queries.len() / items.dim.max(1);
        self.top_k_resident_with(queries, items, k, self.score_kernel(nq))
    }

    /// The scoring kernel [`Compute::top_k_resident`] uses on this device for `queries` queries
    /// at once: on the CPU runtime the lanes kernel for several queries, else the row kernel; on
    /// GPUs the blocked kernel for several queries, else the plane kernel where the runtime has
    /// planes.
    pub fn score_kernel(&self, queries: usize) -> ScoreKernel {
        if self.backend == Backend::Cpu {
            if queries >= LANES_MIN_QUERIES { ScoreKernel::Lanes } else { ScoreKernel::Rows }
        } else if queries >= BLOCKED_MIN_QUERIES {
            ScoreKernel::Blocked
        } else if self.plane_size().is_some() {
            ScoreKernel::Planes
        } else {
            ScoreKernel::Rows
        }
    }

    /// Whether this device runs [`ScoreKernel::Planes`].
    pub fn has_planes(&self) -> bool {
        self.plane_size().is_some()
    }

    /// [`Compute::top_k_resident`] with a given scoring kernel (for comparing them; a kernel
    /// this device cannot run is an error).
    pub fn top_k_resident_with(
        &self,
        queries: &[f32],
        items: &DeviceMatrix,
        k: usize,
        kernel: ScoreKernel,
    ) -> Result<Vec<Vec<(u32, f32)>>, KernelError> {
        self.check_kernel(kernel)?;
        let dim = items.dim;
        let (nq, _) = check_shapes(queries, &[], dim)?;
        let mut best: Vec<Vec<(u32, f32)>> = vec![Vec::new(); nq];
        if items.rows == 0 || k == 0 || nq == 0 {
            return Ok(best);
        }
        let q = self.upload_queries(queries, dim, kernel);
        // The lanes kernel writes no scores, so it runs over whole buffers; the others over
        // chunks whose scores stay in cache.
        let parts = if kernel == ScoreKernel::Lanes { &items.buffers } else { &items.chunks };
        let mut start = 0u32;
        for (part, rows) in parts {
            let found = if kernel == ScoreKernel::Lanes {
                self.top_k_lanes(&q, nq, part, *rows, dim, k)?
            } else {
                let (piece, stride) = top_k_pieces(*rows);
                let scores = self.scores_chunk(&q, nq, part, *rows, stride, dim, kernel);
                self.top_k_prefiltered(scores, nq, *rows, piece, k)?
            };
            for (qi, hits) in found.into_iter().enumerate() {
                best[qi].extend(hits.into_iter().map(|(i, s)| (i + start, s)));
            }
            start += *rows as u32;
        }
        for hits in &mut best {
            sort_hits(hits);
            hits.truncate(k);
        }
        Ok(best)
    }

    /// The scoring launches of [`Compute::top_k_resident_with`] alone, without the top-k
    /// selection, waited for: what the scoring bench times to split a search's time between
    /// scoring and selection. The scores are dropped. (For [`ScoreKernel::Lanes`], whose search
    /// selects as it scores, this runs its scoring kernel without the selection,
    /// [`ops::dot_scores_lanes`], over the chunks.)
    pub fn score_resident_with(
        &self,
        queries: &[f32],
        items: &DeviceMatrix,
        kernel: ScoreKernel,
    ) -> Result<(), KernelError> {
        self.check_kernel(kernel)?;
        let dim = items.dim;
        let (nq, _) = check_shapes(queries, &[], dim)?;
        if items.rows == 0 || nq == 0 {
            return Ok(());
        }
        let q = self.upload_queries(queries, dim, kernel);
        for (chunk, rows) in &items.chunks {
            let (_, stride) = top_k_pieces(*rows);
            drop(self.scores_chunk(&q, nq, chunk, *rows, stride, dim, kernel));
        }
        cubecl::future::block_on(self.client.sync()).map_err(|e| KernelError::Runtime(format!("{e:?}")))
    }

    /// Whether this device runs `kernel`, as an error when it does not.
    fn check_kernel(&self, kernel: ScoreKernel) -> Result<(), KernelError> {
        if kernel == ScoreKernel::Planes && !self.has_planes() {
            return Err(KernelError::Runtime(format!("{} has no plane operations for the plane kernel", self.backend)));
        }
        if kernel == ScoreKernel::Lanes && self.backend != Backend::Cpu {
            return Err(KernelError::Runtime(format!("the lanes kernel is the CPU runtime's, not {}'s", self.backend)));
        }
        if kernel == ScoreKernel::Blocked && self.backend == Backend::Cpu {
            // The CPU runtime runs a cube's units as tasks and a barrier as a switch between
            // them: two barriers per slice made it far slower than every other kernel.
            return Err(KernelError::Runtime("the blocked kernel is for GPUs, not the CPU runtime".into()));
        }
        Ok(())
    }

    /// The queries on the device as `kernel` reads them: transposed in tiles of [`LANES_TILE`]
    /// (16) for [`ScoreKernel::Lanes`] and [`ScoreKernel::Blocked`], row-major for the others.
    fn upload_queries(&self, queries: &[f32], dim: usize, kernel: ScoreKernel) -> Handle {
        if kernel != ScoreKernel::Lanes && kernel != ScoreKernel::Blocked {
            return self.upload_f32(queries);
        }
        let nq = queries.len() / dim;
        let tiles = nq.div_ceil(LANES_TILE);
        let mut t = vec![0.0; tiles * dim * LANES_TILE];
        for (q, row) in queries.chunks_exact(dim).enumerate() {
            for (d, &x) in row.iter().enumerate() {
                t[((q / LANES_TILE) * dim + d) * LANES_TILE + q % LANES_TILE] = x;
            }
        }
        self.upload_f32(&t)
    }

    /// Launches `kernel` over one resident chunk of `rows` items and returns the device buffer
    /// of `nq` score rows, `stride ≥ rows` apart, padded with `f32::MIN`. The caller has checked
    /// that this device runs `kernel`.
    #[allow(clippy::too_many_arguments)]
    fn scores_chunk(
        &self,
        queries: &Handle,
        nq: usize,
        items: &Handle,
        rows: usize,
        stride: usize,
        dim: usize,
        kernel: ScoreKernel,
    ) -> Handle {
        let scores = self.empty_f32(nq * stride);
        let width = vector_width(dim);
        if kernel == ScoreKernel::Blocked {
            let cubes = stride.div_ceil(BLOCKED_ROWS).min(MAX_SCORE_CUBES) as u32;
            // SAFETY: `queries` holds ⌈nq / 16⌉ × dim × 16 floats (`upload_queries`), read as
            // vectors of 4; the kernel clamps item reads to `rows × dim` and bounds rows by
            // `stride` and queries by `n_queries`; the cube has `BLOCKED_ROWS` units, as the
            // kernel needs; `rows ≥ 1` (the caller skips empty matrices).
            unsafe {
                ops::dot_scores_blocked::launch_unchecked(
                    &self.client,
                    CubeCount::Static(cubes.max(1), 1, 1),
                    CubeDim::new_1d(BLOCKED_ROWS as u32),
                    4,
                    BufferArg::from_raw_parts(queries.clone(), nq.div_ceil(LANES_TILE) * dim * LANES_TILE / 4),
                    BufferArg::from_raw_parts(items.clone(), rows * dim),
                    BufferArg::from_raw_parts(scores.clone(), nq * stride),
                    rows as u32,
                    stride as u32,
                    nq as u32,
                    dim as u32,
                    BLOCKED_ROWS,
                    BLOCKED_SLICE,
                )
            };
            return scores;
        }
        if kernel == ScoreKernel::Lanes {
            let w = LANES_TILE;
            let (count, cube_dim) = self.per_core(stride.div_ceil(LANES_ITEMS));
            // SAFETY: `queries` holds ⌈nq / 16⌉ × dim vectors of 16 (`upload_queries`), `items`
            // rows × dim floats (rows past `n_items` are never read), `scores` nq × stride; the
            // units take disjoint runs of rows below `stride`.
            unsafe {
                ops::dot_scores_lanes::launch_unchecked(
                    &self.client,
                    count,
                    cube_dim,
                    w,
                    BufferArg::from_raw_parts(queries.clone(), nq.div_ceil(w) * dim),
                    BufferArg::from_raw_parts(items.clone(), rows * dim),
                    BufferArg::from_raw_parts(scores.clone(), nq * stride),
                    rows as u32,
                    stride as u32,
                    nq as u32,
                    dim as u32,
                    LANES_ITEMS,
                )
            };
            return scores;
        }
        if kernel == ScoreKernel::Planes {
            let plane = self.plane_size().expect("invariant: the caller checked for planes");
            // A plane per row, PLANES_PER_CUBE rows per cube, enough cubes to fill the device
            // several times over; the kernel loops over the rest.
            let cubes = stride.div_ceil(PLANES_PER_CUBE as usize).min(MAX_SCORE_CUBES) as u32;
            // SAFETY: as below; the kernel bounds rows by `n_items` and vectors by `dim_vectors`.
            unsafe {
                ops::dot_scores_plane::launch_unchecked(
                    &self.client,
                    CubeCount::Static(cubes.max(1), 1, 1),
                    CubeDim::new_2d(plane, PLANES_PER_CUBE),
                    width,
                    BufferArg::from_raw_parts(queries.clone(), nq * dim / width),
                    BufferArg::from_raw_parts(items.clone(), rows * dim / width),
                    BufferArg::from_raw_parts(scores.clone(), nq * stride),
                    rows as u32,
                    stride as u32,
                    nq as u32,
                    (dim / width) as u32,
                )
            };
            return scores;
        }
        // A unit scores a run of rows; aim for a few runs per unit of the device.
        let rows_per_unit = match self.backend {
            Backend::Cpu => stride.div_ceil(self.max_units as usize * 64).max(16),
            _ => 1,
        };
        let units = stride.div_ceil(rows_per_unit);
        let (count, cube_dim) = self.grid(units);
        // SAFETY: the kernel bounds every index by `n_items`, `n_queries` and `dim_vectors`,
        // which describe the buffers passed with them.
        unsafe {
            ops::dot_scores::launch_unchecked(
                &self.client,
                count,
                cube_dim,
                width,
                BufferArg::from_raw_parts(queries.clone(), nq * dim / width),
                BufferArg::from_raw_parts(items.clone(), rows * dim / width),
                BufferArg::from_raw_parts(scores.clone(), nq * stride),
                rows as u32,
                stride as u32,
                nq as u32,
                (dim / width) as u32,
                rows_per_unit as u32,
            )
        };
        scores
    }

    /// Top-k of `nq` queries (uploaded for the lanes kernel) against one resident chunk of
    /// `rows` items, by [`ops::dot_top_k_lanes`]: each unit lists its best `k` per query as it
    /// scores, and the lists (units × queries × k) are merged here. No score is written out.
    fn top_k_lanes(
        &self,
        queries: &Handle,
        nq: usize,
        items: &Handle,
        rows: usize,
        dim: usize,
        k: usize,
    ) -> Result<Vec<Vec<(u32, f32)>>, KernelError> {
        let w = LANES_TILE;
        let (tiles, kk) = (nq.div_ceil(w), k.min(rows));
        let (count, cube_dim) = self.per_core(rows.div_ceil(LANES_ITEMS));
        let units = cube_dim.x as usize;
        let slots = units * tiles * w * kk;
        // `ids` holds u32s: the same 4 bytes an element as the floats `empty_f32` sizes for.
        let (best, ids, limits) = (self.empty_f32(slots), self.empty_f32(slots), self.empty_f32(units * tiles * w));
        let next_block = self.upload_u32(&[0]);
        // Blocks of LANES_BLOCK_BYTES, and at least 4 a unit on small matrices.
        let steps = rows.div_ceil(LANES_ITEMS);
        let block_steps = (LANES_BLOCK_BYTES / (dim * 4 * LANES_ITEMS)).min(steps.div_ceil(4 * units)).max(1);
        // SAFETY: `queries` holds ⌈nq / 16⌉ × dim vectors of 16 (`upload_queries`) and `items`
        // rows × dim floats, of which the kernel reads rows below `n_items` only; `best` and
        // `best_ids` hold `kk` slots per unit and padded query, `limits` a vector per unit and
        // tile, as the kernel indexes them; `rows ≥ 1` (the caller skips empty matrices).
        unsafe {
            ops::dot_top_k_lanes::launch_unchecked(
                &self.client,
                count,
                cube_dim,
                w,
                BufferArg::from_raw_parts(queries.clone(), tiles * dim),
                BufferArg::from_raw_parts(items.clone(), rows * dim),
                BufferArg::from_raw_parts(best.clone(), slots),
                BufferArg::from_raw_parts(ids.clone(), slots),
                BufferArg::from_raw_parts(limits.clone(), units * tiles),
                BufferArg::from_raw_parts(next_block, 1),
                rows as u32,
                nq as u32,
                dim as u32,
                kk as u32,
                block_steps as u32,
                LANES_ITEMS,
            )
        };
        let (best, ids) = (self.read_f32(best)?, self.read_u32(ids)?);
        let padded = tiles * w;
        Ok((0..nq)
            .map(|q| {
                let mut hits: Vec<(u32, f32)> = (0..units)
                    .flat_map(|u| {
                        let at = (u * padded + q) * kk;
                        ids[at..at + kk].iter().zip(&best[at..at + kk])
                    })
                    .filter(|(i, _)| (**i as usize) < rows)
                    .map(|(&i, &s)| (i, s))
                    .collect();
                sort_hits(&mut hits);
                hits.truncate(k);
                hits
            })
            .collect())
    }

    /// Top-k of each of `nq` score rows of `n` scores (a device buffer whose rows are padded
    /// with `f32::MIN` to whole pieces of `piece`), exactly, ties included, reading back a small
    /// part of them:
    ///
    /// 1. the maximum of every piece, by cubek's reduction, read back (`nq × pieces` floats);
    /// 2. per query, `t` = the `k`-th largest piece maximum (a NaN maximum counted as −∞). Every
    ///    score in the top `k` is at least `t`, and lies in a piece whose maximum is at least `t`
    ///    (or NaN): the `k` pieces whose maxima reach `t` each hold a score that large;
    /// 3. those pieces (about `k` per query) are gathered on the device and read back, and the
    ///    top `k` of their scores of at least `t` (or NaN) chosen on the host.
    ///
    /// Each score is thus read once by the reduction, and the selection costs O(k · piece) per
    /// query instead of O(n · k) for a per-element top-k list.
    fn top_k_prefiltered(
        &self,
        scores: Handle,
        nq: usize,
        n: usize,
        piece: usize,
        k: usize,
    ) -> Result<Vec<Vec<(u32, f32)>>, KernelError> {
        let pieces = n.div_ceil(piece);
        let stride = pieces * piece;
        let dtype = f32::elem_type_native();
        let rows = nq * pieces;
        let input = TensorHandle::new_contiguous(vec![rows, piece], scores.clone(), dtype);
        // Contiguous, as read below (`TensorHandle::empty` may pitch rows: CUDA does).
        let maxima = TensorHandle::new_contiguous(vec![rows, 1], self.empty_f32(rows), dtype);
        let strategy = self.reduce_strategy();
        cubek::reduce::reduce(
            &self.client,
            input.binding(),
            maxima.clone().binding(),
            1,
            strategy,
            ReduceOperationConfig::Max,
            ReduceDtypes { input: dtype, output: dtype, accumulation: dtype },
        )
        .map_err(|e| KernelError::Runtime(format!("top-k piece maxima: {e:?}")))?;
        let maxima = self.read_f32(maxima.handle)?;

        // The pieces that can hold a top-k score: (query, piece) pairs.
        let mut chosen: Vec<u32> = Vec::new();
        let mut order: Vec<f32> = Vec::with_capacity(pieces);
        let mut thresholds = Vec::with_capacity(nq);
        for q in 0..nq {
            let row = &maxima[q * pieces..(q + 1) * pieces];
            // The k-th best of the pieces' maxima, a NaN maximum counted as −∞: a NaN ranks last,
            // and a piece whose maximum came out NaN vouches for no number.
            let threshold = if k >= pieces {
                f32::NEG_INFINITY
            } else {
                order.clear();
                order.extend(row.iter().map(|&m| if m.is_nan() { f32::NEG_INFINITY } else { m }));
                let (_, kth, _) = order.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
                *kth
            };
            thresholds.push(threshold);
            for (p, &m) in row.iter().enumerate() {
                // NaN maxima are kept: a NaN score ranks last but must not be lost.
                if m >= threshold || m.is_nan() {
                    chosen.extend([q as u32, p as u32]);
                }
            }
        }
        let pairs = chosen.len() / 2;
        let gathered = self.empty_f32(pairs * piece);
        let list = self.upload_u32(&chosen);
        let units = pairs * piece;
        let (count, cube_dim) = self.grid(units);
        // SAFETY: every pair names a query below `nq` and a piece below `pieces`, so each read
        // stays in the `nq × stride` scores; `total` bounds the writes.
        unsafe {
            ops::gather_pieces::launch_unchecked(
                &self.client,
                count,
                cube_dim,
                BufferArg::from_raw_parts(scores, nq * stride),
                BufferArg::from_raw_parts(list, chosen.len()),
                BufferArg::from_raw_parts(gathered.clone(), units),
                piece as u32,
                stride as u32,
                units as u32,
            )
        };
        let gathered = self.read_f32(gathered)?;
        let mut out: Vec<Vec<(u32, f32)>> = vec![Vec::new(); nq];
        // At least `k` pieces have a maximum at or above the threshold, so at least `k` scores
        // do, and the k-th best score is at or above it: only those scores (and NaNs, which rank
        // last but must not be lost) can be in the top-k. Filtering first leaves about `k`
        // candidates a query to sort instead of `k` whole pieces.
        for (pair, values) in chosen.chunks_exact(2).zip(gathered.chunks_exact(piece)) {
            let (q, p) = (pair[0] as usize, pair[1] as usize);
            let (first, threshold) = (p * piece, thresholds[q]);
            let keep = |v: f32| v >= threshold || v.is_nan();
            out[q].extend(
                values
                    .iter()
                    .enumerate()
                    .map(|(t, &v)| ((first + t) as u32, v))
                    .filter(|&(i, v)| (i as usize) < n && keep(v)),
            );
        }
        for hits in &mut out {
            sort_hits(hits);
            hits.truncate(k);
        }
        Ok(out)
    }
}

/// Best first; ties to the lower index; NaN last (as [`crate::reference::top_k`]).
fn sort_hits(hits: &mut [(u32, f32)]) {
    hits.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
        (true, true) => a.0.cmp(&b.0),
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.1.partial_cmp(&a.1).expect("invariant: neither is NaN").then(a.0.cmp(&b.0)),
    });
}

fn check_shapes(queries: &[f32], items: &[f32], dim: usize) -> Result<(usize, usize), KernelError> {
    if dim == 0 || !queries.len().is_multiple_of(dim) || !items.len().is_multiple_of(dim) {
        return Err(KernelError::Shape(format!(
            "queries ({} floats) and items ({} floats) must be whole rows of {dim}",
            queries.len(),
            items.len()
        )));
    }
    Ok((queries.len() / dim, items.len() / dim))
}

/// The widest vector (up to 8 lanes) that divides a row.
fn vector_width(dim: usize) -> usize {
    [8, 4, 2].into_iter().find(|w| dim.is_multiple_of(*w)).unwrap_or(1)
}
