//! What the forward and backward step kernels share: the bind-group layout of their buffers, the
//! per-step timestep index, the LSTM and RNN pipelines in every tiling, and the dispatch loop.

use super::{
    bind_group, bind_group_dynamic, bind_group_layout, groups, step_pipeline, Slot, StepTiling,
    Tiling,
};
use crate::error::Result;
use crate::gpu::{Gpu, StepSlots, H0_MODE};
use crate::model::Cell;
use std::sync::OnceLock;

/// The pipelines of one step-kernel family (forward or backward).
pub(crate) struct StepKernel {
    device: wgpu::Device,
    /// The LSTM and RNN shader files (entry points named like them).
    files: [&'static str; 2],
    layout: wgpu::BindGroupLayout,
    /// Group 1: the per-timestep uniform slot, rebound at every step (without immediates).
    slot_layout: wgpu::BindGroupLayout,
    /// `[cell][tiling]`: LSTM, RNN × `tilings`, each built when first used (a device uses one
    /// or two of the four).
    pipelines: [[OnceLock<wgpu::ComputePipeline>; 4]; 2],
    /// Wide, narrow, this family's split tiling and wide-split (see `index`).
    tilings: [Tiling; 4],
    /// Whether the timestep is immediate data (else group 1 at a dynamic offset).
    immediates: bool,
}

impl StepKernel {
    /// The kernels of `lstm_file` and `rnn_file` whose group 0 has `slots`, with `split` as
    /// the family's split tiling.
    pub fn new(
        device: &wgpu::Device,
        label: &str,
        slots: &[Slot],
        files: [&'static str; 2],
        split: Tiling,
    ) -> Self {
        // Where the device has immediates, the timestep goes in immediate data: lavapipe leaks
        // memory in proportion to the bound buffers when a descriptor set is rebound at every
        // step, as a dynamic uniform offset needs.
        let immediates = device.features().contains(wgpu::Features::IMMEDIATES)
            && device.limits().max_immediate_size >= 16;
        StepKernel {
            device: device.clone(),
            files,
            layout: bind_group_layout(device, label, slots),
            slot_layout: bind_group_layout(device, "step slot", &[Slot::DynamicUniform(16)]),
            pipelines: Default::default(),
            tilings: [Tiling::WIDE, Tiling::NARROW, split, Tiling::WIDE_SPLIT],
            immediates,
        }
    }

    /// The pipeline of `cell` in tiling `choice`, built on first use.
    fn pipeline(&self, cell: usize, choice: usize) -> &wgpu::ComputePipeline {
        self.pipelines[cell][choice].get_or_init(|| {
            let file = self.files[cell];
            let groups: &[&wgpu::BindGroupLayout] = if self.immediates {
                &[&self.layout]
            } else {
                &[&self.layout, &self.slot_layout]
            };
            let entry = file.trim_end_matches(".wgsl");
            let tiling = self.tilings[choice];
            step_pipeline(
                &self.device,
                file,
                entry,
                groups,
                self.immediates,
                Some(tiling),
            )
        })
    }

    /// Where a concrete tiling sits in `tilings` and `pipelines`.
    fn index(tiling: StepTiling) -> usize {
        match tiling {
            StepTiling::Wide | StepTiling::Auto => 0,
            StepTiling::Narrow => 1,
            StepTiling::Split => 2,
            StepTiling::WideSplit => 3,
        }
    }

    /// Whether the timestep goes in immediate data (then no step slots are needed).
    pub fn uses_immediates(&self) -> bool {
        self.immediates
    }

    /// Binds `buffers` as group 0 and records one dispatch per `(t, mode)` of `order`, over
    /// `hidden` units and `batch` rows in the tiling the [`Gpu`]'s setting picks for the batch.
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
        let choice = Self::index(gpu.step_tiling().resolve(batch, gpu.info().device_type));
        let tiling = self.tilings[choice];
        let wg = [
            groups(hidden, tiling.units),
            groups(batch, tiling.batch_tile),
            1,
        ];
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
        pass.set_pipeline(self.pipeline(cell_index, choice));
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
            gpu.dispatch(pass, [wg[0], wg[1], wg[2]]);
        }
        Ok(())
    }
}
