//! `loss.wgsl` and `one_hot.wgsl`: cross-entropy and squared error with their gradients, their
//! mean, and one-hot inputs.

use super::{bind_group, bind_group_layout, groups, pipeline, Slot};
use crate::error::Result;
use crate::gpu::Gpu;

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
    /// Softmax cross-entropy over `cols` classes; targets are class ids (`u32::MAX` = ignore).
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

pub(crate) struct LossKernel {
    layout: wgpu::BindGroupLayout,
    cross_entropy: wgpu::ComputePipeline,
    squared_error: wgpu::ComputePipeline,
    mean: wgpu::ComputePipeline,
    one_hot_layout: wgpu::BindGroupLayout,
    one_hot: wgpu::ComputePipeline,
}

impl LossKernel {
    pub fn new(device: &wgpu::Device) -> Self {
        let layout = bind_group_layout(
            device,
            "loss",
            &[
                Slot::Uniform,
                Slot::Read,
                Slot::Read,
                Slot::ReadWrite,
                Slot::ReadWrite,
                Slot::ReadWrite,
            ],
        );
        let one_hot_layout = bind_group_layout(
            device,
            "one_hot",
            &[Slot::Uniform, Slot::Read, Slot::ReadWrite],
        );
        LossKernel {
            cross_entropy: pipeline(device, "loss.wgsl", "cross_entropy", &layout),
            squared_error: pipeline(device, "loss.wgsl", "squared_error", &layout),
            mean: pipeline(device, "loss.wgsl", "mean_loss", &layout),
            one_hot: pipeline(device, "one_hot.wgsl", "one_hot", &one_hot_layout),
            layout,
            one_hot_layout,
        }
    }

    /// Records the loss of `rows` rows: per-row losses and gradients (scaled by `scale`), then
    /// their mean (`Σ · scale`) into `out[0]`. Two dispatches.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        kind: LossKind,
        rows: usize,
        cols: usize,
        scale: f32,
        b: &LossBuffers<'_>,
    ) -> Result<()> {
        let wg = [groups(rows, 64), 1, 1];
        gpu.check_dispatch("the loss", wg)?;
        let params = Params {
            rows: rows as u32,
            cols: cols as u32,
            scale,
            _pad: 0,
        };
        let uniform = gpu.uniform("loss params", &params)?;
        let group = bind_group(
            gpu.device(),
            &self.layout,
            &[&uniform, b.input, b.targets, b.grad, b.rows, b.out],
        );
        pass.set_bind_group(0, &group, &[]);
        pass.set_pipeline(match kind {
            LossKind::CrossEntropy => &self.cross_entropy,
            LossKind::SquaredError => &self.squared_error,
        });
        gpu.dispatch(pass, [wg[0], 1, 1]);
        pass.set_pipeline(&self.mean);
        gpu.dispatch(pass, [1, 1, 1]);
        Ok(())
    }

    /// Records `dst[r, v] = (tokens[r] == v)` for `rows` tokens over `vocab` classes.
    pub fn encode_one_hot(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        tokens: &wgpu::Buffer,
        rows: usize,
        vocab: usize,
        dst: &wgpu::Buffer,
    ) -> Result<()> {
        let max = gpu.limits().max_compute_workgroups_per_dimension as usize;
        let total = (rows * vocab).div_ceil(256);
        let (x, y) = if total <= max {
            (total as u32, 1)
        } else {
            (max as u32, groups(total, max))
        };
        gpu.check_dispatch("the one-hot encoding", [x, y, 1])?;
        let params = Params {
            rows: rows as u32,
            cols: vocab as u32,
            scale: 0.0,
            _pad: 0,
        };
        let uniform = gpu.uniform("one-hot params", &params)?;
        let group = bind_group(gpu.device(), &self.one_hot_layout, &[&uniform, tokens, dst]);
        pass.set_pipeline(&self.one_hot);
        pass.set_bind_group(0, &group, &[]);
        gpu.dispatch(pass, [x, y, 1]);
        Ok(())
    }
}
