//! `optim.wgsl`: SGD, Adam and AdamW steps over the parameter arena.

use super::with_constants;
use crate::error::Result;
use crate::gpu::{Binding, Gpu, PipelineKey};

const THREADS: usize = 256;

pub(crate) const SGD: u32 = 0;
pub(crate) const ADAM: u32 = 1;
pub(crate) const ADAMW: u32 = 2;

pub(crate) const NESTEROV: u32 = 1;
pub(crate) const SKIP_NONFINITE: u32 = 2;
pub(crate) const FIRST_STEP: u32 = 4;

/// The WGSL source with the host's constants.
pub(crate) fn source() -> String {
    with_constants(
        &[
            ("THREADS", THREADS as u32),
            ("SGD", SGD),
            ("ADAM", ADAM),
            ("ADAMW", ADAMW),
            ("NESTEROV", NESTEROV),
            ("SKIP_NONFINITE", SKIP_NONFINITE),
            ("FIRST_STEP", FIRST_STEP),
        ],
        include_str!("../../shaders/optim.wgsl"),
    )
}

const BINDINGS: [Binding; 6] = [
    Binding::Uniform,
    Binding::ReadWrite,
    Binding::Read,
    Binding::ReadWrite,
    Binding::ReadWrite,
    Binding::Read,
];

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

/// The buffers of one step.
pub(crate) struct OptimBuffers<'a> {
    pub params: &'a wgpu::Buffer,
    pub grads: &'a wgpu::Buffer,
    pub state1: &'a wgpu::Buffer,
    pub state2: &'a wgpu::Buffer,
    pub clip: &'a wgpu::Buffer,
}

/// Records one optimizer step over `params.len` values.
pub(crate) fn encode(
    gpu: &Gpu,
    pass: &mut wgpu::ComputePass<'_>,
    params: &OptimParams,
    b: &OptimBuffers<'_>,
) -> Result<()> {
    let grid = gpu.grid_2d(
        "the optimizer step",
        (params.len as usize).div_ceil(THREADS),
    )?;
    let key = PipelineKey::plain("optim", "optimizer_step");
    let pipeline = gpu.pipeline(key, &[&BINDINGS], 0, source)?;
    let buffers = [b.params, b.grads, b.state1, b.state2, b.clip];
    let group = gpu.uniform_group(&pipeline, "optimizer params", params, &buffers)?;
    gpu.launch(pass, &pipeline, &group, grid);
    Ok(())
}
