//! `reduce.wgsl`: the global L2 norm, the clip coefficient and the scale pass.

use super::generated;
use crate::error::Result;
use crate::gpu::{groups, Binding, Gpu, PipelineKey};

const THREADS: usize = 256;
/// Workgroups of the first pass: enough to fill a large GPU, few enough for one finishing
/// workgroup to combine. Fixed, so that the reduction order (and the result) is deterministic.
const MAX_PARTIALS: usize = 1024;

/// Bit in the flags: leave the gradients untouched when the norm is not finite.
pub(crate) const ERROR_IF_NONFINITE: u32 = 1;

/// The WGSL source with the host's constants.
pub(crate) fn source() -> String {
    generated(
        &[
            ("THREADS", THREADS as u32),
            ("THREAD_LEVELS", THREADS.trailing_zeros()),
            ("ERROR_IF_NONFINITE", ERROR_IF_NONFINITE),
        ],
        include_str!("../../shaders/reduce.wgsl"),
    )
}

const BINDINGS: [Binding; 4] = [
    Binding::Uniform,
    Binding::ReadWrite,
    Binding::ReadWrite,
    Binding::ReadWrite,
];

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    partials: u32,
    flags: u32,
    max_norm: f32,
}

fn pipeline(gpu: &Gpu, entry: &'static str) -> Result<std::sync::Arc<crate::gpu::Pipeline>> {
    gpu.pipeline(PipelineKey::plain("reduce", entry), &[&BINDINGS], 0, source)
}

/// Records the clip of the first `len` values of `data`: three dispatches, no readback.
/// `result` (3 floats) receives the norm before clipping, the coefficient and a "left
/// untouched" flag.
pub(crate) fn encode_clip(
    gpu: &Gpu,
    pass: &mut wgpu::ComputePass<'_>,
    data: &wgpu::Buffer,
    len: usize,
    max_norm: f32,
    flags: u32,
    result: &wgpu::Buffer,
) -> Result<()> {
    let partials = groups(len, THREADS).clamp(1, MAX_PARTIALS as u32);
    // The scale pass needs one invocation per element: a 2-D grid past 65535 workgroups.
    let scale_grid = gpu.grid_2d("the clip scale pass", len.div_ceil(THREADS))?;
    let (sum_squares, finish_norm, scale) = (
        pipeline(gpu, "sum_squares")?,
        pipeline(gpu, "finish_norm")?,
        pipeline(gpu, "scale")?,
    );
    // One partial per workgroup, each written by its workgroup.
    let partial_buffer = gpu.scratch("clip partials", 4 * partials as usize)?;
    let params = Params {
        len: len as u32,
        partials,
        flags,
        max_norm,
    };
    // One bind group serves the three pipelines: their layouts are equal.
    let group = gpu.uniform_group(
        &sum_squares,
        "clip params",
        &params,
        &[data, &partial_buffer, result],
    )?;
    gpu.launch(pass, &sum_squares, &group, [partials, 1, 1]);
    gpu.launch(pass, &finish_norm, &group, [1, 1, 1]);
    gpu.launch(pass, &scale, &group, scale_grid);
    Ok(())
}

/// Records per-row norms and means of `data` as `[rows, cols]` into `result` (`[rows, 2]`).
pub(crate) fn encode_row_norms(
    gpu: &Gpu,
    pass: &mut wgpu::ComputePass<'_>,
    data: &wgpu::Buffer,
    rows: usize,
    cols: usize,
    result: &wgpu::Buffer,
) -> Result<()> {
    let (x, y) = if rows <= 65535 {
        (rows as u32, 1)
    } else {
        (65535, groups(rows, 65535))
    };
    gpu.check_dispatch("the per-step norms", [x, y, 1])?;
    // Each of a row's THREADS invocations walks cols / THREADS values.
    let trips = cols.div_ceil(THREADS) as u64 + 1;
    if trips > super::LOOP_BUDGET {
        return Err(crate::error::Error::Limit {
            what: format!("per-step norms over {cols} values"),
            limit: "loop trips per invocation (llvmpipe stops loops after 65,535)",
            needed: trips,
            available: super::LOOP_BUDGET,
        });
    }
    let row_norms = pipeline(gpu, "row_norms")?;
    let params = Params {
        len: cols as u32,
        partials: rows as u32,
        flags: 0,
        max_norm: 0.0,
    };
    // The partials binding is unused here (but must not alias a writable binding).
    let unused = gpu.scratch("unused partials", 4)?;
    let group = gpu.uniform_group(
        &row_norms,
        "row norm params",
        &params,
        &[data, &unused, result],
    )?;
    gpu.launch(pass, &row_norms, &group, [x, y, 1]);
    Ok(())
}
