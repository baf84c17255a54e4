//! `loss.wgsl` and `one_hot.wgsl`: cross-entropy and squared error with their gradients, their
//! mean, and one-hot inputs.

use super::{generated, with_constants, LOOP_BUDGET};
use crate::error::{Error, Result};
use crate::gpu::{Binding, Gpu, PipelineKey};

/// A target class that does not count (padding).
pub(crate) const IGNORE: u32 = u32::MAX;
/// Invocations per row of the cross-entropy (each walks a 64th of the classes).
const ROW_THREADS: usize = 64;
/// Invocations of the mean's workgroups.
const THREADS: usize = 256;
/// Rows per chunk of the mean's first pass (64 per invocation).
const MEAN_CHUNK: usize = 64 * THREADS;

/// The WGSL source of the losses with the host's constants.
pub(crate) fn source() -> String {
    generated(
        &[
            ("IGNORE", IGNORE),
            ("ROW_THREADS", ROW_THREADS as u32),
            ("ROW_LEVELS", ROW_THREADS.trailing_zeros()),
            ("THREADS", THREADS as u32),
            ("THREAD_LEVELS", THREADS.trailing_zeros()),
            ("MEAN_CHUNK", MEAN_CHUNK as u32),
        ],
        include_str!("../../shaders/loss.wgsl"),
    )
}

/// Trips of an invocation's loops over `rows` rows of `cols` classes (cross-entropy: three
/// walks over a 64th of the classes; the mean: a chunk's 64 rows, or the chunks).
pub(crate) fn loop_trips(rows: usize, cols: usize) -> u64 {
    let classes = 3 * (cols.div_ceil(ROW_THREADS) as u64 + 1);
    let chunks = rows.div_ceil(MEAN_CHUNK).div_ceil(THREADS) as u64 + 1;
    classes.max(65).max(chunks)
}

/// The WGSL source of the one-hot encoding.
pub(crate) fn one_hot_source() -> String {
    with_constants(&[], include_str!("../../shaders/one_hot.wgsl"))
}

const BINDINGS: [Binding; 6] = [
    Binding::Uniform,
    Binding::Read,
    Binding::Read,
    Binding::ReadWrite,
    Binding::ReadWrite,
    Binding::ReadWrite,
];

const ONE_HOT_BINDINGS: [Binding; 3] = [Binding::Uniform, Binding::Read, Binding::ReadWrite];

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    scale: f32,
    _pad: u32,
}

/// Which loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LossKind {
    /// Softmax cross-entropy over `cols` classes; targets are class ids (`IGNORE` = skip).
    CrossEntropy,
    /// Squared error of one prediction per row; targets are f32 bit patterns.
    SquaredError,
}

/// The buffers of one loss evaluation.
pub(crate) struct LossBuffers<'a> {
    pub input: &'a wgpu::Buffer,
    pub targets: &'a wgpu::Buffer,
    pub grad: &'a wgpu::Buffer,
    pub rows: &'a wgpu::Buffer,
    /// Receives the mean loss in element 0.
    pub out: &'a wgpu::Buffer,
}

/// Records the loss of `rows` rows: per-row losses and gradients (scaled by `scale`), then
/// their mean (`Σ · scale`) into `out[0]` (`rows` is overwritten on the way). Three
/// dispatches.
pub(crate) fn encode(
    gpu: &Gpu,
    pass: &mut wgpu::ComputePass<'_>,
    kind: LossKind,
    (rows, cols): (usize, usize),
    scale: f32,
    b: &LossBuffers<'_>,
) -> Result<()> {
    let trips = loop_trips(rows, cols);
    if trips > LOOP_BUDGET {
        return Err(Error::Limit {
            what: format!("a loss over {rows} rows of {cols} classes"),
            limit: "loop trips per invocation (llvmpipe stops loops after 65,535)",
            needed: trips,
            available: LOOP_BUDGET,
        });
    }
    let per_row_grid = match kind {
        LossKind::CrossEntropy => gpu.grid_2d("the loss", rows)?,
        LossKind::SquaredError => gpu.grid_2d("the loss", rows.div_ceil(64))?,
    };
    let chunks = gpu.grid_2d("the mean loss", rows.div_ceil(MEAN_CHUNK))?;
    let pipeline = |entry| gpu.pipeline(PipelineKey::plain("loss", entry), &[&BINDINGS], 0, source);
    let per_row = pipeline(match kind {
        LossKind::CrossEntropy => "cross_entropy",
        LossKind::SquaredError => "squared_error",
    })?;
    let (partials, mean) = (pipeline("mean_partials")?, pipeline("mean_loss")?);
    let params = Params {
        rows: rows as u32,
        cols: cols as u32,
        scale,
        _pad: 0,
    };
    let buffers = [b.input, b.targets, b.grad, b.rows, b.out];
    let group = gpu.uniform_group(&per_row, "loss params", &params, &buffers)?;
    gpu.launch(pass, &per_row, &group, per_row_grid);
    gpu.launch(pass, &partials, &group, chunks);
    gpu.launch(pass, &mean, &group, [1, 1, 1]);
    Ok(())
}

/// Records `dst[r, v] = (tokens[r] == v)` for `rows` tokens over `vocab` classes.
pub(crate) fn encode_one_hot(
    gpu: &Gpu,
    pass: &mut wgpu::ComputePass<'_>,
    tokens: &wgpu::Buffer,
    rows: usize,
    vocab: usize,
    dst: &wgpu::Buffer,
) -> Result<()> {
    let grid = gpu.grid_2d("the one-hot encoding", (rows * vocab).div_ceil(256))?;
    let key = PipelineKey::plain("one_hot", "one_hot");
    let pipeline = gpu.pipeline(key, &[&ONE_HOT_BINDINGS], 0, one_hot_source)?;
    let params = Params {
        rows: rows as u32,
        cols: vocab as u32,
        scale: 0.0,
        _pad: 0,
    };
    let group = gpu.uniform_group(&pipeline, "one-hot params", &params, &[tokens, dst])?;
    gpu.launch(pass, &pipeline, &group, grid);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Up to 2^26 rows (the trainer's largest batch × seq-len) and 400,000 classes (more
    /// characters than Unicode assigns), an invocation stays under the loop budget; one
    /// invocation per row walking the classes would make 1.2 million trips.
    #[test]
    fn an_invocation_stays_under_the_loop_budget() {
        for (rows, cols) in [
            (1, 1),
            (1, 58),
            (1 << 26, 1),
            (300_000, 60_000),
            (1 << 20, 400_000),
        ] {
            assert!(loop_trips(rows, cols) <= LOOP_BUDGET, "{rows} × {cols}");
        }
    }
}
