//! `lstm_step.wgsl`: one fused forward timestep per dispatch.

use super::{
    bind_group, bind_group_dynamic, bind_group_layout, groups, step_pipeline, Slot, NARROW, WIDE,
};
use crate::error::Result;
use crate::gpu::{Gpu, StepSlots, H0_MODE};
use crate::model::Cell;

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
    /// Group 1: the per-timestep uniform slot, rebound at every step.
    slot_layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// The vanilla RNN's kernel, with the same bindings.
    rnn: wgpu::ComputePipeline,
    /// Both, tiled for batches of at most 4 (see `with_narrow_tiles`).
    narrow: wgpu::ComputePipeline,
    rnn_narrow: wgpu::ComputePipeline,
    /// Whether `slot` is immediate data (else group 1 at a dynamic offset).
    immediates: bool,
}

impl LstmStepKernel {
    pub fn new(device: &wgpu::Device) -> Self {
        let layout = bind_group_layout(
            device,
            "lstm_step",
            &[
                Slot::Uniform,
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
        // Where the device has immediates, the timestep goes in immediate data: lavapipe leaks
        // memory in proportion to the bound buffers when a descriptor set is rebound at every
        // step, as a dynamic uniform offset needs.
        let immediates = device.features().contains(wgpu::Features::IMMEDIATES)
            && device.limits().max_immediate_size >= 16;
        let slot_layout = bind_group_layout(device, "step slot", &[Slot::DynamicUniform(16)]);
        let groups: &[&wgpu::BindGroupLayout] = if immediates {
            &[&layout]
        } else {
            &[&layout, &slot_layout]
        };
        let make = |file: &str, entry: &str, narrow: bool| {
            step_pipeline(device, file, entry, groups, immediates, narrow)
        };
        let (rnn, pipeline) = (
            make("rnn_step.wgsl", "rnn_step", false),
            make("lstm_step.wgsl", "lstm_step", false),
        );
        let (rnn_narrow, narrow) = (
            make("rnn_step.wgsl", "rnn_step", true),
            make("lstm_step.wgsl", "lstm_step", true),
        );
        LstmStepKernel {
            layout,
            slot_layout,
            pipeline,
            rnn,
            narrow,
            rnn_narrow,
            immediates,
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
        let narrow = dims.batch as usize <= NARROW.1;
        let (units, rows) = if narrow { NARROW } else { WIDE };
        let wg = [
            groups(dims.hidden as usize, units),
            groups(dims.batch as usize, rows),
            1,
        ];
        gpu.check_dispatch("the LSTM step kernel", wg)?;
        let uniform = gpu.uniform("lstm step dims", dims)?;
        let group = bind_group(
            gpu.device(),
            &self.layout,
            &[
                &uniform,
                buffers.params,
                buffers.xproj,
                buffers.lengths,
                buffers.init,
                buffers.hs,
                buffers.cs,
                buffers.gates,
                buffers.last,
            ],
        );
        let slot_group =
            bind_group_dynamic(gpu.device(), &self.slot_layout, &[&slots.buffer], 0, 16);
        pass.set_pipeline(match (cell, narrow) {
            (Cell::Lstm, false) => &self.pipeline,
            (Cell::Rnn, false) => &self.rnn,
            (Cell::Lstm, true) => &self.narrow,
            (Cell::Rnn, true) => &self.rnn_narrow,
        });
        pass.set_bind_group(0, &group, &[]);
        let steps = dims.steps as usize;
        for s in 0..steps {
            let t = if dims.flags & REVERSE != 0 {
                steps - 1 - s
            } else {
                s
            };
            self.set_slot(pass, &slot_group, slots, t, 0);
            pass.dispatch_workgroups(wg[0], wg[1], wg[2]);
        }
        Ok(())
    }

    /// Selects timestep `t` (with `mode` flags) for the next dispatch.
    fn set_slot(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        slot_group: &wgpu::BindGroup,
        slots: &StepSlots,
        t: usize,
        mode: u32,
    ) {
        if self.immediates {
            pass.set_immediates(0, bytemuck::cast_slice(&[t as u32, mode, 0, 0]));
        } else if mode == H0_MODE {
            pass.set_bind_group(1, slot_group, &[slots.h0_offset()]);
        } else {
            pass.set_bind_group(1, slot_group, &[slots.offset(t)]);
        }
    }
}
