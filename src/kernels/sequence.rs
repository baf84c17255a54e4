//! `sequence.wgsl`: layout changes (batch-first), padding masks and dropout on sequences.

use super::with_constants;
use crate::error::Result;
use crate::gpu::{Binding, Gpu, PipelineKey};

const THREADS: usize = 256;

const SRC_BATCH_FIRST: u32 = 1;
const DST_BATCH_FIRST: u32 = 2;
const MASK: u32 = 4;
const DROPOUT: u32 = 8;

/// The WGSL source with the host's constants.
pub(crate) fn source() -> String {
    with_constants(
        &[
            ("THREADS", THREADS as u32),
            ("SRC_BATCH_FIRST", SRC_BATCH_FIRST),
            ("DST_BATCH_FIRST", DST_BATCH_FIRST),
            ("MASK", MASK),
            ("DROPOUT", DROPOUT),
        ],
        include_str!("../../shaders/sequence.wgsl"),
    )
}

const BINDINGS: [Binding; 4] = [
    Binding::Uniform,
    Binding::Read,
    Binding::Read,
    Binding::ReadWrite,
];

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    steps: u32,
    batch: u32,
    features: u32,
    flags: u32,
    src_offset: u32,
    dst_offset: u32,
    seed: u32,
    drop_threshold: u32,
    keep_scale: f32,
    _pad: [u32; 3],
}

/// One copy of a `[T, B, F]` sequence.
pub(crate) struct SequenceCopy<'a> {
    pub steps: usize,
    pub batch: usize,
    pub features: usize,
    pub src: &'a wgpu::Buffer,
    pub src_offset: usize,
    pub src_batch_first: bool,
    pub dst: &'a wgpu::Buffer,
    pub dst_batch_first: bool,
    /// Zero the steps at or past each sequence's length.
    pub lengths: Option<&'a wgpu::Buffer>,
    /// Inverted dropout with probability `p`, mask drawn from `seed`.
    pub dropout: Option<(f32, u32)>,
}

/// Records the copy.
pub(crate) fn encode(
    gpu: &Gpu,
    pass: &mut wgpu::ComputePass<'_>,
    op: &SequenceCopy<'_>,
) -> Result<()> {
    let total = op.steps * op.batch * op.features;
    let grid = gpu.grid_2d("a sequence copy", total.div_ceil(THREADS))?;
    let key = PipelineKey::plain("sequence", "copy_sequence");
    let pipeline = gpu.pipeline(key, &[&BINDINGS], 0, source)?;
    let mut flags = 0;
    if op.src_batch_first {
        flags |= SRC_BATCH_FIRST;
    }
    if op.dst_batch_first {
        flags |= DST_BATCH_FIRST;
    }
    if op.lengths.is_some() {
        flags |= MASK;
    }
    let (mut seed, mut drop_threshold, mut keep_scale) = (0, 0, 1.0);
    if let Some((p, s)) = op.dropout {
        flags |= DROPOUT;
        seed = s;
        drop_threshold = (p as f64 * 4294967296.0).min(u32::MAX as f64) as u32;
        keep_scale = 1.0 / (1.0 - p);
    }
    let params = Params {
        steps: op.steps as u32,
        batch: op.batch as u32,
        features: op.features as u32,
        flags,
        src_offset: op.src_offset as u32,
        dst_offset: 0,
        seed,
        drop_threshold,
        keep_scale,
        _pad: [0; 3],
    };
    // The lengths binding is unused without MASK; any buffer will do.
    let lengths = op.lengths.unwrap_or(op.src);
    let group = gpu.uniform_group(
        &pipeline,
        "sequence copy params",
        &params,
        &[op.src, lengths, op.dst],
    )?;
    gpu.launch(pass, &pipeline, &group, grid);
    Ok(())
}
