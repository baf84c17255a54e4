//! `optim.wgsl`: SGD, Adam and AdamW steps over the parameter arena.

use super::{bind_group, bind_group_layout, groups, pipeline, Slot};
use crate::error::Result;
use crate::gpu::Gpu;

const THREADS: usize = 256;

pub(crate) const SGD: u32 = 0;
pub(crate) const ADAM: u32 = 1;
pub(crate) const ADAMW: u32 = 2;

pub(crate) const NESTEROV: u32 = 1;
pub(crate) const SKIP_NONFINITE: u32 = 2;
pub(crate) const FIRST_STEP: u32 = 4;

/// The uniform of one optimizer step (see `optim.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct OptimParams {
    pub len: u32,
    pub kind: u32,
    pub flags: u32,
    pub _pad0: u32,
    pub lr: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub bias_correction1: f32,
    pub bias_correction2_sqrt: f32,
    pub _pad1: [u32; 3],
}

pub(crate) struct OptimKernel {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

/// The buffers of one step.
pub(crate) struct OptimBuffers<'a> {
    pub params: &'a wgpu::Buffer,
    pub grads: &'a wgpu::Buffer,
    pub state1: &'a wgpu::Buffer,
    pub state2: &'a wgpu::Buffer,
    pub clip: &'a wgpu::Buffer,
}

impl OptimKernel {
    pub fn new(device: &wgpu::Device) -> Self {
        let layout = bind_group_layout(
            device,
            "optim",
            &[
                Slot::Uniform,
                Slot::ReadWrite,
                Slot::Read,
                Slot::ReadWrite,
                Slot::ReadWrite,
                Slot::Read,
            ],
        );
        let pipeline = pipeline(device, "optim.wgsl", "optimizer_step", &layout);
        OptimKernel { layout, pipeline }
    }

    pub fn encode(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        params: &OptimParams,
        b: &OptimBuffers<'_>,
    ) -> Result<()> {
        let max = gpu.limits().max_compute_workgroups_per_dimension as usize;
        let total = (params.len as usize).div_ceil(THREADS);
        let (x, y) = if total <= max {
            (total as u32, 1)
        } else {
            (max as u32, groups(total, max))
        };
        gpu.check_dispatch("the optimizer step", [x, y, 1])?;
        let uniform = gpu.uniform("optimizer params", params)?;
        let group = bind_group(
            gpu.device(),
            &self.layout,
            &[&uniform, b.params, b.grads, b.state1, b.state2, b.clip],
        );
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &group, &[]);
        gpu.dispatch(pass, [x, y, 1]);
        Ok(())
    }
}
