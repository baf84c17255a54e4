//! `lstm_step_back.wgsl`: one fused backward timestep per dispatch, in reverse time, plus one
//! dispatch for `dh_0`.

use super::lstm_step::REVERSE;
use super::{
    bind_group, bind_group_dynamic, bind_group_layout, groups, step_pipeline, Slot, NARROW, WIDE,
};
use crate::error::Result;
use crate::gpu::{Gpu, StepSlots, H0_MODE};
use crate::model::Cell;

/// Slots of `[B, H]` in the backward state buffer.
pub(crate) const STATE_SLOTS: usize = 6;
/// Flag: record the per-step gradient probes.
pub(crate) const PROBE: u32 = 8;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct StepBackDims {
    pub batch: u32,
    pub hidden: u32,
    pub steps: u32,
    pub flags: u32,
    pub w_offset: u32,
    /// Element offset of this direction's first `dy` column.
    pub dy_offset: u32,
    /// D·H: row stride of `dy` and `cs`.
    pub row_stride: u32,
    /// d·H: this direction's columns in `cs`.
    pub col_offset: u32,
    pub _pad: [u32; 4],
}

/// The buffers of one sequence's backward pass.
pub(crate) struct StepBackBuffers<'a> {
    pub params: &'a wgpu::Buffer,
    pub gates: &'a wgpu::Buffer,
    pub cs: &'a wgpu::Buffer,
    pub dy: &'a wgpu::Buffer,
    pub lengths: &'a wgpu::Buffer,
    pub dgates: &'a wgpu::Buffer,
    /// `[STATE_SLOTS, B, H]`: dh carry (dh_n in), dc carry (dc_n in, dc_0 out), dh_0 out,
    /// c_0 in, probe carries.
    pub state: &'a wgpu::Buffer,
    /// `[4, T, B, H]` per-step probes (with the PROBE flag), else any buffer.
    pub probes: &'a wgpu::Buffer,
}

pub(crate) struct LstmStepBackKernel {
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

impl LstmStepBackKernel {
    pub fn new(device: &wgpu::Device) -> Self {
        let layout = bind_group_layout(
            device,
            "lstm_step_back",
            &[
                Slot::Uniform,
                Slot::Read,
                Slot::Read,
                Slot::Read,
                Slot::Read,
                Slot::Read,
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
            make("rnn_step_back.wgsl", "rnn_step_back", false),
            make("lstm_step_back.wgsl", "lstm_step_back", false),
        );
        let (rnn_narrow, narrow) = (
            make("rnn_step_back.wgsl", "rnn_step_back", true),
            make("lstm_step_back.wgsl", "lstm_step_back", true),
        );
        LstmStepBackKernel {
            layout,
            slot_layout,
            pipeline,
            rnn,
            narrow,
            rnn_narrow,
            immediates,
        }
    }

    /// Records the steps in the reverse of the forward processing order and the `dh_0`
    /// dispatch: T + 1 dispatches.
    pub fn encode(
        &self,
        gpu: &Gpu,
        cell: Cell,
        pass: &mut wgpu::ComputePass<'_>,
        dims: &StepBackDims,
        slots: &StepSlots,
        buffers: &StepBackBuffers<'_>,
    ) -> Result<()> {
        let narrow = dims.batch as usize <= NARROW.1;
        let (units, rows) = if narrow { NARROW } else { WIDE };
        let wg = [
            groups(dims.hidden as usize, units),
            groups(dims.batch as usize, rows),
            1,
        ];
        gpu.check_dispatch("the LSTM backward step kernel", wg)?;
        let uniform = gpu.uniform("lstm step back dims", dims)?;
        let group = bind_group(
            gpu.device(),
            &self.layout,
            &[
                &uniform,
                buffers.params,
                buffers.gates,
                buffers.cs,
                buffers.dy,
                buffers.lengths,
                buffers.dgates,
                buffers.state,
                buffers.probes,
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
                s
            } else {
                steps - 1 - s
            };
            self.set_slot(pass, &slot_group, slots, t, 0);
            pass.dispatch_workgroups(wg[0], wg[1], wg[2]);
        }
        self.set_slot(pass, &slot_group, slots, 0, H0_MODE);
        pass.dispatch_workgroups(wg[0], wg[1], wg[2]);
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
