//! `lstm_step_back.wgsl`: one fused backward timestep per dispatch, in reverse time, plus one
//! dispatch for `dh_0`.

use super::lstm_step::REVERSE;
use super::step::StepKernel;
use super::{Slot, Tiling};
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
    kernel: StepKernel,
}

impl LstmStepBackKernel {
    pub fn new(device: &wgpu::Device) -> Self {
        use Slot::{Read, ReadWrite, Uniform};
        let slots = [
            Uniform, Read, Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite,
        ];
        let kernel = StepKernel::new(
            device,
            "lstm_step_back",
            &slots,
            ["lstm_step_back.wgsl", "rnn_step_back.wgsl"],
            Tiling::SPLIT_BACKWARD,
        );
        LstmStepBackKernel { kernel }
    }

    /// Records the steps in the reverse of the forward processing order and the `dh_0`
    /// dispatch: T + 1 dispatches.
    pub fn encode(
        &self,
        gpu: &Gpu,
        cell: Cell,
        pass: &mut wgpu::ComputePass<'_>,
        dims: &StepBackDims,
        slots: Option<&StepSlots>,
        b: &StepBackBuffers<'_>,
    ) -> Result<()> {
        let uniform = gpu.uniform("lstm step back dims", dims)?;
        let buffers = [
            &uniform, b.params, b.gates, b.cs, b.dy, b.lengths, b.dgates, b.state, b.probes,
        ];
        let steps = dims.steps as usize;
        let reverse = dims.flags & REVERSE != 0;
        let order = (0..steps)
            .map(|s| (if reverse { s } else { steps - 1 - s }, 0))
            .chain(std::iter::once((0, H0_MODE)));
        let size = (dims.batch as usize, dims.hidden as usize);
        self.kernel.encode(
            gpu,
            "the LSTM backward step kernel",
            cell,
            pass,
            size,
            &buffers,
            slots,
            order,
        )
    }
}
