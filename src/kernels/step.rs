//! What the forward and backward step kernels share: the bind-group layout of their buffers, the
//! per-step timestep index, the LSTM and RNN pipelines in both tilings, and the dispatch loop.

use super::{
    bind_group, bind_group_dynamic, bind_group_layout, groups, step_pipeline, Slot, NARROW, WIDE,
};
use crate::error::Result;
use crate::gpu::{Gpu, StepSlots, H0_MODE};
use crate::model::Cell;

/// The pipelines of one step-kernel family (forward or backward).
pub(crate) struct StepKernel {
    layout: wgpu::BindGroupLayout,
    /// Group 1: the per-timestep uniform slot, rebound at every step (without immediates).
    slot_layout: wgpu::BindGroupLayout,
    /// `[cell][tiling]`: LSTM, RNN × wide, narrow (see `with_narrow_tiles`).
    pipelines: [[wgpu::ComputePipeline; 2]; 2],
    /// Whether the timestep is immediate data (else group 1 at a dynamic offset).
    immediates: bool,
    /// `WGPU_LSTM_TILING=wide|narrow` forces one tiling (to compare them on a GPU); otherwise
    /// the narrow one serves batches of at most 4.
    forced: Option<bool>,
}

impl StepKernel {
    /// Builds the four pipelines of `lstm_file` and `rnn_file` (entry points named like the
    /// files) whose group 0 has `slots`.
    pub fn new(
        device: &wgpu::Device,
        label: &str,
        slots: &[Slot],
        lstm_file: &str,
        rnn_file: &str,
    ) -> Self {
        let layout = bind_group_layout(device, label, slots);
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
        let make = |file: &str, narrow: bool| {
            let entry = file.trim_end_matches(".wgsl");
            step_pipeline(device, file, entry, groups, immediates, narrow)
        };
        let pipelines = [
            [make(lstm_file, false), make(lstm_file, true)],
            [make(rnn_file, false), make(rnn_file, true)],
        ];
        let forced = match std::env::var("WGPU_LSTM_TILING").as_deref() {
            Ok("wide") => Some(false),
            Ok("narrow") => Some(true),
            _ => None,
        };
        StepKernel {
            layout,
            slot_layout,
            pipelines,
            immediates,
            forced,
        }
    }

    /// Whether the timestep goes in immediate data (then no step slots are needed).
    pub fn uses_immediates(&self) -> bool {
        self.immediates
    }

    /// Binds `buffers` as group 0 and records one dispatch per `(t, mode)` of `order`, over
    /// `hidden` units and `batch` rows in the tiling that suits the batch.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        what: &str,
        cell: Cell,
        pass: &mut wgpu::ComputePass<'_>,
        (batch, hidden): (usize, usize),
        buffers: &[&wgpu::Buffer],
        slots: Option<&StepSlots>,
        order: impl Iterator<Item = (usize, u32)>,
    ) -> Result<()> {
        let narrow = self.forced.unwrap_or(batch <= NARROW.1);
        let (units, rows) = if narrow { NARROW } else { WIDE };
        let wg = [groups(hidden, units), groups(batch, rows), 1];
        gpu.check_dispatch(what, wg)?;
        let group = bind_group(gpu.device(), &self.layout, buffers);
        // Without immediates the timestep comes from the slot buffer at a dynamic offset.
        let slotted = match (self.immediates, slots) {
            (true, _) => None,
            (false, Some(slots)) => {
                let group =
                    bind_group_dynamic(gpu.device(), &self.slot_layout, &[&slots.buffer], 0, 16);
                Some((slots, group))
            }
            (false, None) => {
                return Err(crate::error::Error::Invalid(
                    "step slots are needed without immediates".into(),
                ))
            }
        };
        let cell_index = match cell {
            Cell::Lstm => 0,
            Cell::Rnn => 1,
        };
        pass.set_pipeline(&self.pipelines[cell_index][narrow as usize]);
        pass.set_bind_group(0, &group, &[]);
        for (t, mode) in order {
            debug_assert!(mode == 0 || mode == H0_MODE);
            match &slotted {
                None => pass.set_immediates(0, bytemuck::cast_slice(&[t as u32, mode, 0, 0])),
                Some((slots, group)) if mode == H0_MODE => {
                    pass.set_bind_group(1, group, &[slots.h0_offset()])
                }
                Some((slots, group)) => pass.set_bind_group(1, group, &[slots.offset(t)]),
            }
            pass.dispatch_workgroups(wg[0], wg[1], wg[2]);
        }
        Ok(())
    }
}
