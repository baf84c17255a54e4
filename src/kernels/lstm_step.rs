//! `lstm_step.wgsl`: one fused forward timestep per dispatch.

use super::{bind_group_dynamic, bind_group_layout, groups, pipeline, Slot};
use crate::error::Result;
use crate::gpu::{Gpu, StepSlots};

/// Hidden units per workgroup (all four gate rows of each).
const UNITS: usize = 16;
/// Batch rows per workgroup.
const BATCH_TILE: usize = 16;

/// Bit in [`StepDims::flags`]: keep the activated gates for the backward pass.
pub(crate) const STORE_GATES: u32 = 1;

/// The per-sequence constants of the step kernel.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct StepDims {
    pub batch: u32,
    pub hidden: u32,
    /// Element offset of `weight_hh` in the parameter arena.
    pub w_offset: u32,
    /// Number of cell-state slots: T+1 when training, 2 for inference.
    pub cs_slots: u32,
    pub flags: u32,
    pub _pad: [u32; 3],
}

/// The buffers one sequence's steps read and write.
pub(crate) struct StepBuffers<'a> {
    pub params: &'a wgpu::Buffer,
    pub xproj: &'a wgpu::Buffer,
    pub hs: &'a wgpu::Buffer,
    pub cs: &'a wgpu::Buffer,
    pub gates: &'a wgpu::Buffer,
}

pub(crate) struct LstmStepKernel {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl LstmStepKernel {
    pub fn new(device: &wgpu::Device) -> Self {
        let layout = bind_group_layout(
            device,
            "lstm_step",
            &[
                Slot::Uniform,
                Slot::DynamicUniform(16),
                Slot::Read,
                Slot::Read,
                Slot::ReadWrite,
                Slot::ReadWrite,
                Slot::ReadWrite,
            ],
        );
        let pipeline = pipeline(device, "lstm_step.wgsl", "lstm_step", &layout);
        LstmStepKernel { layout, pipeline }
    }

    /// Records `steps` timesteps (t = 0 .. steps-1) into `pass`: one dispatch each, one bind
    /// group for all of them.
    pub fn encode(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        dims: &StepDims,
        steps: usize,
        slots: &StepSlots,
        buffers: &StepBuffers<'_>,
    ) -> Result<()> {
        let wg = [
            groups(dims.hidden as usize, UNITS),
            groups(dims.batch as usize, BATCH_TILE),
            1,
        ];
        gpu.check_dispatch("the LSTM step kernel", wg)?;
        let uniform = gpu.uniform("lstm step dims", dims)?;
        let group = bind_group_dynamic(
            gpu.device(),
            &self.layout,
            &[
                &uniform,
                &slots.buffer,
                buffers.params,
                buffers.xproj,
                buffers.hs,
                buffers.cs,
                buffers.gates,
            ],
            1,
            16,
        );
        pass.set_pipeline(&self.pipeline);
        for t in 0..steps {
            pass.set_bind_group(0, &group, &[slots.offset(t)]);
            pass.dispatch_workgroups(wg[0], wg[1], wg[2]);
        }
        Ok(())
    }
}
