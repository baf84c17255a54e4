//! `sequence.wgsl`: layout changes (batch-first), padding masks and dropout on sequences.

use super::{bind_group, bind_group_layout, groups, pipeline, Slot};
use crate::error::Result;
use crate::gpu::Gpu;

const THREADS: usize = 256;

const SRC_BATCH_FIRST: u32 = 1;
const DST_BATCH_FIRST: u32 = 2;
const MASK: u32 = 4;
const DROPOUT: u32 = 8;

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

pub(crate) struct SequenceKernel {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl SequenceKernel {
    pub fn new(device: &wgpu::Device) -> Self {
        let layout = bind_group_layout(
            device,
            "sequence",
            &[Slot::Uniform, Slot::Read, Slot::Read, Slot::ReadWrite],
        );
        let pipeline = pipeline(device, "sequence.wgsl", "copy_sequence", &layout);
        SequenceKernel { layout, pipeline }
    }

    pub fn encode(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        op: &SequenceCopy<'_>,
    ) -> Result<()> {
        let total = op.steps * op.batch * op.features;
        let max = gpu.limits().max_compute_workgroups_per_dimension as usize;
        let wgs = total.div_ceil(THREADS);
        let (x, y) = if wgs <= max {
            (wgs as u32, 1)
        } else {
            (max as u32, groups(wgs, max))
        };
        gpu.check_dispatch("a sequence copy", [x, y, 1])?;
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
        let uniform = gpu.uniform("sequence copy params", &params)?;
        // The lengths binding is unused without MASK; any buffer will do.
        let lengths = op.lengths.unwrap_or(op.src);
        let group = bind_group(
            gpu.device(),
            &self.layout,
            &[&uniform, op.src, lengths, op.dst],
        );
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &group, &[]);
        gpu.dispatch(pass, [x, y, 1]);
        Ok(())
    }
}
