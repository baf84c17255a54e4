//! `reduce.wgsl`: the global L2 norm, the clip coefficient and the scale pass.

use super::{bind_group, bind_group_layout, groups, pipeline, Slot};
use crate::error::Result;
use crate::gpu::Gpu;

const THREADS: usize = 256;
/// Workgroups of the first pass: enough to fill a large GPU, few enough for one finishing
/// workgroup to combine. Fixed, so that the reduction order (and the result) is deterministic.
const MAX_PARTIALS: usize = 1024;

/// Bit in the flags: leave the gradients untouched when the norm is not finite.
pub(crate) const ERROR_IF_NONFINITE: u32 = 1;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    partials: u32,
    flags: u32,
    max_norm: f32,
}

pub(crate) struct ReduceKernel {
    layout: wgpu::BindGroupLayout,
    sum_squares: wgpu::ComputePipeline,
    finish_norm: wgpu::ComputePipeline,
    scale: wgpu::ComputePipeline,
    row_norms: wgpu::ComputePipeline,
}

impl ReduceKernel {
    pub fn new(device: &wgpu::Device) -> Self {
        let layout = bind_group_layout(
            device,
            "reduce",
            &[
                Slot::Uniform,
                Slot::ReadWrite,
                Slot::ReadWrite,
                Slot::ReadWrite,
            ],
        );
        ReduceKernel {
            sum_squares: pipeline(device, "reduce.wgsl", "sum_squares", &layout),
            finish_norm: pipeline(device, "reduce.wgsl", "finish_norm", &layout),
            scale: pipeline(device, "reduce.wgsl", "scale", &layout),
            row_norms: pipeline(device, "reduce.wgsl", "row_norms", &layout),
            layout,
        }
    }

    /// Records the clip of the first `len` values of `data`: three dispatches, no readback.
    /// `result` (3 floats) receives the norm before clipping, the coefficient and a
    /// "left untouched" flag.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_clip(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        data: &wgpu::Buffer,
        len: usize,
        max_norm: f32,
        flags: u32,
        result: &wgpu::Buffer,
    ) -> Result<()> {
        let partials = groups(len, THREADS).clamp(1, MAX_PARTIALS as u32);
        // One partial per workgroup, each written by its workgroup.
        let partial_buffer = gpu.scratch("clip partials", 4 * partials as usize)?;
        let params = Params {
            len: len as u32,
            partials,
            flags,
            max_norm,
        };
        let uniform = gpu.uniform("clip params", &params)?;
        let group = bind_group(
            gpu.device(),
            &self.layout,
            &[&uniform, data, &partial_buffer, result],
        );
        // The scale pass needs one invocation per element: a 2-D grid past 65535 workgroups.
        let max = gpu.limits().max_compute_workgroups_per_dimension as usize;
        let total = len.div_ceil(THREADS);
        let (sx, sy) = if total <= max {
            (total as u32, 1)
        } else {
            (max as u32, groups(total, max))
        };
        gpu.check_dispatch("the clip scale pass", [sx, sy, 1])?;
        pass.set_bind_group(0, &group, &[]);
        pass.set_pipeline(&self.sum_squares);
        gpu.dispatch(pass, [partials, 1, 1]);
        pass.set_pipeline(&self.finish_norm);
        gpu.dispatch(pass, [1, 1, 1]);
        pass.set_pipeline(&self.scale);
        gpu.dispatch(pass, [sx, sy, 1]);
        Ok(())
    }

    /// Records per-row norms and means of `data` as `[rows, cols]` into `result` (`[rows, 2]`).
    pub fn encode_row_norms(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        data: &wgpu::Buffer,
        rows: usize,
        cols: usize,
        result: &wgpu::Buffer,
    ) -> Result<()> {
        let (x, y) = if rows <= 65535 {
            (rows as u32, 1)
        } else {
            (65535, groups(rows, 65535))
        };
        gpu.check_dispatch("the per-step norms", [x, y, 1])?;
        let params = Params {
            len: cols as u32,
            partials: rows as u32,
            flags: 0,
            max_norm: 0.0,
        };
        let uniform = gpu.uniform("row norm params", &params)?;
        // The partials binding is unused here (but must not alias a writable binding).
        let unused = gpu.scratch("unused partials", 4)?;
        let group = bind_group(
            gpu.device(),
            &self.layout,
            &[&uniform, data, &unused, result],
        );
        pass.set_pipeline(&self.row_norms);
        pass.set_bind_group(0, &group, &[]);
        gpu.dispatch(pass, [x, y, 1]);
        Ok(())
    }
}
