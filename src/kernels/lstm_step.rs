//! `lstm_step.wgsl`: one fused forward timestep per dispatch.

use super::step::StepKernel;
use super::{Slot, Tiling};
use crate::error::Result;
use crate::gpu::{Gpu, StepSlots};
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
    kernel: StepKernel,
}

impl LstmStepKernel {
    /// Whether the timestep goes in immediate data (then no step slots are needed).
    pub fn uses_immediates(&self) -> bool {
        self.kernel.uses_immediates()
    }

    pub fn new(device: &wgpu::Device) -> Self {
        use Slot::{Read, ReadWrite, Uniform};
        let slots = [
            Uniform, Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite,
        ];
        LstmStepKernel {
            kernel: StepKernel::new(
                device,
                "lstm_step",
                &slots,
                ["lstm_step.wgsl", "rnn_step.wgsl"],
                Tiling::SPLIT_FORWARD,
            ),
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
        slots: Option<&StepSlots>,
        b: &StepBuffers<'_>,
    ) -> Result<()> {
        let uniform = gpu.uniform("lstm step dims", dims)?;
        let buffers = [
            &uniform, b.params, b.xproj, b.lengths, b.init, b.hs, b.cs, b.gates, b.last,
        ];
        let steps = dims.steps as usize;
        let reverse = dims.flags & REVERSE != 0;
        let order = (0..steps).map(|s| (if reverse { steps - 1 - s } else { s }, 0));
        let size = (dims.batch as usize, dims.hidden as usize);
        self.kernel.encode(
            gpu,
            "the LSTM step kernel",
            cell,
            pass,
            size,
            &buffers,
            slots,
            order,
        )
    }
}
