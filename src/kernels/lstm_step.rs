//! `lstm_step.wgsl`: one fused forward timestep per dispatch.

use super::{bind_group_dynamic, bind_group_layout, groups, pipeline, Slot};
use crate::error::Result;
use crate::gpu::{Gpu, StepSlots};
use crate::model::Cell;

/// Hidden units per workgroup (all four gate rows of each).
const UNITS: usize = 16;
/// Batch rows per workgroup.
const BATCH_TILE: usize = 16;

/// Bit in [`StepDims::flags`]: keep the activated gates for the backward pass.
pub(crate) const STORE_GATES: u32 = 1;
/// Bit in the flags of both step kernels: the reverse-time direction.
pub(crate) const REVERSE: u32 = 2;
/// Bit in the flags of both step kernels: per-sequence lengths are bound.
pub(crate) const LENGTHS: u32 = 4;

/// The per-sequence constants of the step kernel.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct StepDims {
    pub batch: u32,
    pub hidden: u32,
    pub steps: u32,
    pub flags: u32,
    /// Element offset of `weight_hh` in the parameter arena.
    pub w_offset: u32,
    /// Number of cell-state slots: T when training, 2 for inference.
    pub cs_slots: u32,
    /// D·H: row stride of `hs` and `cs`.
    pub row_stride: u32,
    /// d·H: this direction's first column.
    pub col_offset: u32,
    /// Element offsets of this layer and direction's h and c in the init / last buffers.
    pub h_state: u32,
    pub c_state: u32,
    pub _pad: [u32; 2],
}

/// The buffers one sequence's steps read and write.
pub(crate) struct StepBuffers<'a> {
    pub params: &'a wgpu::Buffer,
    pub xproj: &'a wgpu::Buffer,
    pub lengths: &'a wgpu::Buffer,
    pub init: &'a wgpu::Buffer,
    pub hs: &'a wgpu::Buffer,
    pub cs: &'a wgpu::Buffer,
    pub gates: &'a wgpu::Buffer,
    pub last: &'a wgpu::Buffer,
}

pub(crate) struct LstmStepKernel {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// The vanilla RNN's kernel, with the same bindings.
    rnn: wgpu::ComputePipeline,
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
                Slot::Read,
                Slot::Read,
                Slot::ReadWrite,
                Slot::ReadWrite,
                Slot::ReadWrite,
                Slot::ReadWrite,
            ],
        );
        let rnn = pipeline(device, "rnn_step.wgsl", "rnn_step", &layout);
        let pipeline = pipeline(device, "lstm_step.wgsl", "lstm_step", &layout);
        LstmStepKernel {
            layout,
            pipeline,
            rnn,
        }
    }

    /// Records the whole sequence into `pass` (t = 0 .. T-1, or T-1 .. 0 in reverse): one
    /// dispatch per timestep, one bind group for all of them.
    pub fn encode(
        &self,
        gpu: &Gpu,
        cell: Cell,
        pass: &mut wgpu::ComputePass<'_>,
        dims: &StepDims,
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
                buffers.lengths,
                buffers.init,
                buffers.hs,
                buffers.cs,
                buffers.gates,
                buffers.last,
            ],
            1,
            16,
        );
        pass.set_pipeline(match cell {
            Cell::Lstm => &self.pipeline,
            Cell::Rnn => &self.rnn,
        });
        let steps = dims.steps as usize;
        for s in 0..steps {
            let t = if dims.flags & REVERSE != 0 {
                steps - 1 - s
            } else {
                s
            };
            pass.set_bind_group(0, &group, &[slots.offset(t)]);
            pass.dispatch_workgroups(wg[0], wg[1], wg[2]);
        }
        Ok(())
    }
}
