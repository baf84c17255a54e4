//! `loss.wgsl` and `one_hot.wgsl`: cross-entropy and squared error with their gradients, their
//! mean, and one-hot inputs.

use super::with_constants;
use crate::error::Result;
use crate::gpu::{groups, Binding, Gpu, PipelineKey};

/// A target class that does not count (padding).
pub(crate) const IGNORE: u32 = u32::MAX;

/// The WGSL source of the losses with the host's constants.
pub(crate) fn source() -> String {
    with_constants(
        &[("IGNORE", IGNORE)],
        include_str!("../../shaders/loss.wgsl"),
    )
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
/// their mean (`Σ · scale`) into `out[0]`. Two dispatches.
pub(crate) fn encode(
    gpu: &Gpu,
    pass: &mut wgpu::ComputePass<'_>,
    kind: LossKind,
    (rows, cols): (usize, usize),
    scale: f32,
    b: &LossBuffers<'_>,
) -> Result<()> {
    let wg = [groups(rows, 64), 1, 1];
    gpu.check_dispatch("the loss", wg)?;
    let pipeline = |entry| gpu.pipeline(PipelineKey::plain("loss", entry), &[&BINDINGS], 0, source);
    let per_row = pipeline(match kind {
        LossKind::CrossEntropy => "cross_entropy",
        LossKind::SquaredError => "squared_error",
    })?;
    let mean = pipeline("mean_loss")?;
    let params = Params {
        rows: rows as u32,
        cols: cols as u32,
        scale,
        _pad: 0,
    };
    let buffers = [b.input, b.targets, b.grad, b.rows, b.out];
    let group = gpu.uniform_group(&per_row, "loss params", &params, &buffers)?;
    gpu.launch(pass, &per_row, &group, wg);
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
