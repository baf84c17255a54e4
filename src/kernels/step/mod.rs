//! The recurrent step kernels: one template per direction of a step (`step_forward.wgsl`,
//! `step_backward.wgsl`), the tiled recurrent product written once; each cell contributes only
//! its pointwise part (`shaders/cells/`). This module owns the tilings, the per-step index
//! (immediates or uniform slots) and the launch of a sequence's dispatches.

mod generate;
pub(crate) mod sequence;
mod slots;
mod tiling;

use super::{Cell, ShaderVariant};
use crate::error::{Error, Result};
use crate::gpu::{groups, lock, Binding, Gpu, Pipeline, PipelineKey};
use std::sync::Arc;

pub(crate) use generate::{loop_trips, unroll};
pub use sequence::Recurrence;
use slots::StepSlots;
use tiling::{immediates, settings};
pub use tiling::{StepTiling, Tiling};

/// The flags of the step kernels, defined once here and generated into every step shader.
pub(crate) mod flags {
    /// Forward: keep what the backward pass needs.
    pub const STORE_GATES: u32 = 1;
    /// The reverse-time direction.
    pub const REVERSE: u32 = 2;
    /// Per-sequence lengths are bound.
    pub const LENGTHS: u32 = 4;
    /// Backward: record the per-step gradient probes.
    pub const PROBE: u32 = 8;
    /// The product reads this step's values of another region instead of the previous step's
    /// (the projection of an LSTM with proj_size).
    pub const SOURCE_CURRENT: u32 = 16;
    /// Forward: the cell's h is projected by the next dispatch (write it, but not h_n).
    pub const PROJECTED: u32 = 32;
    /// The vanilla RNN uses relu instead of tanh.
    pub const RELU: u32 = 64;
    /// The layer has biases (the GRU reads b_hh itself).
    pub const BIAS: u32 = 128;
    /// Slot mode of the backward pass's last dispatch: write dh_0.
    pub const H0_MODE: u32 = 2;

    /// Every flag, as the WGSL constants.
    pub const ALL: [(&str, u32); 9] = [
        ("STORE_GATES", STORE_GATES),
        ("REVERSE", REVERSE),
        ("LENGTHS", LENGTHS),
        ("PROBE", PROBE),
        ("SOURCE_CURRENT", SOURCE_CURRENT),
        ("PROJECTED", PROJECTED),
        ("RELU", RELU),
        ("BIAS", BIAS),
        ("H0_MODE", H0_MODE),
    ];
}

/// Which template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Direction {
    Forward,
    Backward,
}

impl Direction {
    /// `forward` or `backward`, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Backward => "backward",
        }
    }
}

/// What a step dispatch computes after the recurrent product: a cell's pointwise part, or the
/// projection of an LSTM with proj_size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Pointwise {
    Cell(Cell),
    Projection,
}

impl Pointwise {
    /// Weight rows per unit in the forward product.
    fn gates(&self) -> usize {
        match self {
            Pointwise::Cell(cell) => cell.gates(),
            Pointwise::Projection => 1,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Pointwise::Cell(cell) => cell.name(),
            Pointwise::Projection => "projection",
        }
    }

    fn forward_wgsl(&self) -> &'static str {
        match self {
            Pointwise::Cell(cell) => cell.forward_wgsl(),
            Pointwise::Projection => include_str!("../../../shaders/cells/projection_forward.wgsl"),
        }
    }

    fn backward_wgsl(&self) -> &'static str {
        match self {
            Pointwise::Cell(cell) => cell.backward_wgsl(),
            Pointwise::Projection => {
                include_str!("../../../shaders/cells/projection_backward.wgsl")
            }
        }
    }

    const ALL: [Pointwise; 4] = [
        Pointwise::Cell(Cell::Lstm),
        Pointwise::Cell(Cell::Gru),
        Pointwise::Cell(Cell::Rnn),
        Pointwise::Projection,
    ];
}

/// What the dims of both templates open with: the sizes, the flags and the operands of the
/// recurrent product (its output units, its length, W, where it reads and where the step
/// writes): WGSL's `Product` (step_prelude.wgsl), 48 bytes as uniform layout aligns it.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Product {
    pub batch: u32,
    pub steps: u32,
    pub flags: u32,
    pub units: u32,
    pub k_size: u32,
    pub w_offset: u32,
    pub src_base: u32,
    pub src_stride: u32,
    pub dst_base: u32,
    pub dst_stride: u32,
    /// Weight rows per unit: the gates of the cell, 1 for the projection.
    pub gates: u32,
    pub _pad: u32,
}

/// The per-sequence constants of the forward template (see `step_forward.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ForwardDims {
    pub product: Product,
    pub h_init: u32,
    pub h_last: u32,
    pub c_init: u32,
    pub c_last: u32,
    pub cs_base: u32,
    pub cs_stride: u32,
    pub cs_slots: u32,
    pub kept_stride: u32,
    pub bias_hh: u32,
    pub _pad: [u32; 3],
}

/// The per-sequence constants of the backward template (see `step_backward.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct BackwardDims {
    pub product: Product,
    pub dst2_base: u32,
    pub dy_base: u32,
    pub dy_stride: u32,
    pub saved_base: u32,
    pub saved_stride: u32,
    pub kept_stride: u32,
    pub slot_stride: u32,
    pub _pad: [u32; 5],
}

/// The buffers of a forward step kernel, in binding order after the uniform.
pub(crate) struct ForwardBuffers<'a> {
    pub params: &'a wgpu::Buffer,
    pub xproj: &'a wgpu::Buffer,
    pub lengths: &'a wgpu::Buffer,
    /// Initial and final states of every layer and direction.
    pub state: &'a wgpu::Buffer,
    /// The h history: source and destination regions.
    pub hs: &'a wgpu::Buffer,
    pub cs: &'a wgpu::Buffer,
    /// What the cell keeps for backward.
    pub gates: &'a wgpu::Buffer,
}

/// The buffers of a backward step kernel, in binding order after the uniform.
pub(crate) struct BackwardBuffers<'a> {
    pub params: &'a wgpu::Buffer,
    pub gates: &'a wgpu::Buffer,
    /// c (LSTM) or h (GRU, RNN) of every step.
    pub saved: &'a wgpu::Buffer,
    pub dy: &'a wgpu::Buffer,
    pub lengths: &'a wgpu::Buffer,
    /// The gate gradients: this step's destination and the next step's source.
    pub dgates: &'a wgpu::Buffer,
    /// The carries and initial-state gradients of this layer and direction.
    pub state: &'a wgpu::Buffer,
    pub probes: &'a wgpu::Buffer,
}

const FORWARD_BINDINGS: [Binding; 8] = [
    Binding::Uniform,
    Binding::Read,
    Binding::Read,
    Binding::Read,
    Binding::ReadWrite,
    Binding::ReadWrite,
    Binding::ReadWrite,
    Binding::ReadWrite,
];

const BACKWARD_BINDINGS: [Binding; 9] = [
    Binding::Uniform,
    Binding::Read,
    Binding::Read,
    Binding::Read,
    Binding::Read,
    Binding::Read,
    Binding::ReadWrite,
    Binding::ReadWrite,
    Binding::ReadWrite,
];

/// The bindings of group 0 of the step kernels of `direction`.
pub(crate) fn bindings(direction: Direction) -> &'static [Binding] {
    match direction {
        Direction::Forward => &FORWARD_BINDINGS,
        Direction::Backward => &BACKWARD_BINDINGS,
    }
}

const SLOT_BINDINGS: [Binding; 1] = [Binding::DynamicUniform(16)];

/// One kind of dispatch of a sequence, ready to record at every step.
pub(crate) struct StepDispatch {
    pipeline: Arc<Pipeline>,
    group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

/// The pipeline of `pointwise` in `direction` for `batch` rows in the tiling the device's
/// setting picks, and that tiling.
fn step_pipeline(
    gpu: &Gpu,
    direction: Direction,
    pointwise: Pointwise,
    batch: usize,
) -> Result<(Arc<Pipeline>, Tiling)> {
    let choice = lock(&settings(gpu).tiling)
        .clone()
        .map_err(Error::Invalid)?
        .resolve(batch, gpu.info().device_type);
    let tiling = Tiling::of(choice, direction);
    let immediates = immediates(gpu);
    let (entry, bindings): (&'static str, &[Binding]) = match direction {
        Direction::Forward => ("step_forward", &FORWARD_BINDINGS),
        Direction::Backward => ("step_backward", &BACKWARD_BINDINGS),
    };
    let key = PipelineKey {
        shader: entry,
        entry,
        variant: format!("{} {choice:?} immediates={immediates}", pointwise.name()),
    };
    let groups: &[&[Binding]] = if immediates {
        &[bindings]
    } else {
        &[bindings, &SLOT_BINDINGS]
    };
    let pipeline = gpu.pipeline(key, groups, if immediates { 16 } else { 0 }, || {
        generate::source(direction, pointwise, tiling, immediates)
    })?;
    Ok((pipeline, tiling))
}

/// Checks that an invocation of a kernel walking `k_size` in tiles of `tiling` stays under
/// the loop budget (see [`super::LOOP_BUDGET`]).
fn check_trips(what: &str, k_size: usize, tiling: Tiling) -> Result<()> {
    let trips = loop_trips(k_size, tiling);
    if trips > super::LOOP_BUDGET {
        return Err(Error::Limit {
            what: format!("{what} over {k_size} values"),
            limit: "loop trips per invocation (llvmpipe stops loops after 65,535)",
            needed: trips,
            available: super::LOOP_BUDGET,
        });
    }
    Ok(())
}

/// The forward dispatch of `pointwise` with `dims` on `b`.
pub(crate) fn forward(
    gpu: &Gpu,
    pointwise: Pointwise,
    dims: &ForwardDims,
    b: &ForwardBuffers<'_>,
) -> Result<StepDispatch> {
    let buffers = [b.params, b.xproj, b.lengths, b.state, b.hs, b.cs, b.gates];
    step_dispatch(
        gpu,
        Direction::Forward,
        pointwise,
        &dims.product,
        dims,
        &buffers,
    )
}

/// The backward dispatch of `pointwise` with `dims` on `b`.
pub(crate) fn backward(
    gpu: &Gpu,
    pointwise: Pointwise,
    dims: &BackwardDims,
    b: &BackwardBuffers<'_>,
) -> Result<StepDispatch> {
    let buffers = [
        b.params, b.gates, b.saved, b.dy, b.lengths, b.dgates, b.state, b.probes,
    ];
    step_dispatch(
        gpu,
        Direction::Backward,
        pointwise,
        &dims.product,
        dims,
        &buffers,
    )
}

/// A step dispatch over `batch` rows and `units` outputs, walking `k_size`; `dims` is the
/// uniform.
fn step_dispatch<T: bytemuck::Pod>(
    gpu: &Gpu,
    direction: Direction,
    pointwise: Pointwise,
    product: &Product,
    dims: &T,
    buffers: &[&wgpu::Buffer],
) -> Result<StepDispatch> {
    let (batch, units, k_size) = (product.batch, product.units, product.k_size);
    let (pipeline, tiling) = step_pipeline(gpu, direction, pointwise, batch as usize)?;
    check_trips(&format!("a {direction:?} step"), k_size as usize, tiling)?;
    let group = gpu.uniform_group(&pipeline, "step dims", dims, buffers)?;
    let workgroups = step_grid(gpu, units, batch, tiling)?;
    Ok(StepDispatch {
        pipeline,
        group,
        workgroups,
    })
}

fn step_grid(gpu: &Gpu, units: u32, batch: u32, tiling: Tiling) -> Result<[u32; 3]> {
    let wg = [
        groups(units as usize, tiling.units),
        groups(batch as usize, tiling.batch_tile),
        1,
    ];
    gpu.check_dispatch("a recurrent step", wg)?;
    Ok(wg)
}

/// Records a sequence: at each `(t, mode)` of `order`, every dispatch of `dispatches` in turn
/// (in H0 mode only the first). The timestep goes in immediate data, or in a uniform slot at a
/// dynamic offset: one bind group for all steps either way.
pub(crate) fn encode_steps(
    gpu: &Gpu,
    pass: &mut wgpu::ComputePass<'_>,
    dispatches: &[StepDispatch],
    steps: usize,
    order: impl Iterator<Item = (usize, u32)>,
) -> Result<()> {
    let slotted = if immediates(gpu) {
        None
    } else {
        let slots = StepSlots::for_steps(gpu, steps)?;
        let groups: Vec<wgpu::BindGroup> = dispatches
            .iter()
            .map(|d| gpu.bind_group_window(&d.pipeline, 1, &slots.buffer, 16))
            .collect();
        Some((slots, groups))
    };
    for (t, mode) in order {
        debug_assert!(mode == 0 || mode == flags::H0_MODE);
        let count = if mode == flags::H0_MODE {
            1
        } else {
            dispatches.len()
        };
        for (i, d) in dispatches[..count].iter().enumerate() {
            pass.set_pipeline(&d.pipeline.compute);
            pass.set_bind_group(0, &d.group, &[]);
            match &slotted {
                None => pass.set_immediates(0, bytemuck::cast_slice(&[t as u32, mode, 0, 0])),
                Some((slots, groups)) => {
                    let offset = if mode == flags::H0_MODE {
                        slots.h0_offset()
                    } else {
                        slots.offset(t)
                    };
                    pass.set_bind_group(1, &groups[i], &[offset]);
                }
            }
            gpu.dispatch(pass, d.workgroups);
        }
    }
    Ok(())
}

/// Every step kernel that can be built: both directions, every pointwise part, every tiling,
/// with and without immediates.
pub(crate) fn variants() -> Vec<ShaderVariant> {
    let mut out = Vec::new();
    for direction in [Direction::Forward, Direction::Backward] {
        for pointwise in Pointwise::ALL {
            for choice in StepTiling::ALL {
                for immediates in [false, true] {
                    let tiling = Tiling::of(choice, direction);
                    out.push(ShaderVariant {
                        name: format!(
                            "step {direction:?} ({}, {choice:?}{})",
                            pointwise.name(),
                            if immediates { ", immediates" } else { "" }
                        ),
                        source: generate::source(direction, pointwise, tiling, immediates),
                        immediates,
                    });
                }
            }
        }
    }
    for shape in sequence::example_shapes() {
        out.push(ShaderVariant {
            name: format!("sequence {:?} ({})", shape.direction, shape.name()),
            source: generate::sequence_source(&shape),
            immediates: false,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_tiling_by_batch_and_device() {
        use wgpu::DeviceType::{Cpu, DiscreteGpu};
        use StepTiling::*;
        assert_eq!(Auto.resolve(5, DiscreteGpu), WideSplit);
        assert_eq!(Auto.resolve(4, DiscreteGpu), Split);
        assert_eq!(Auto.resolve(1, Cpu), Narrow);
        assert_eq!(Auto.resolve(64, Cpu), Wide);
        assert_eq!(Wide.resolve(1, DiscreteGpu), Wide);
        assert_eq!(StepTiling::parse("split"), Some(StepTiling::Split));
        assert_eq!(StepTiling::parse("tall"), None);
    }

    /// The uniforms match WGSL's layout: Product is 48 bytes (its members are followed by a
    /// 16-aligned one), and the dims structs fill whole 16-byte rows, as uniforms must.
    #[test]
    fn dims_have_the_uniform_layout() {
        use std::mem::size_of;
        assert_eq!(size_of::<Product>(), 48);
        assert_eq!(size_of::<ForwardDims>(), 96);
        assert_eq!(size_of::<BackwardDims>(), 96);
    }

    /// The tile constants are valid for the template: whole vec4s of batch rows, lanes that
    /// divide the K slices, a power-of-two split.
    #[test]
    fn tilings_fit_the_template() {
        for choice in StepTiling::ALL {
            for direction in [Direction::Forward, Direction::Backward] {
                let t = Tiling::of(choice, direction);
                assert_eq!(t.batch_tile % 4, 0, "{t:?}");
                assert_eq!(t.k_tile % t.k_split, 0, "{t:?}");
                assert!(t.k_split.is_power_of_two(), "{t:?}");
                assert!(t.threads() <= 256, "{t:?}: WebGPU allows 256 invocations");
            }
        }
    }
}
