//! `column_sum.wgsl`: column sums of a row-major matrix (the bias gradients).

use super::with_constants;
use crate::error::Result;
use crate::gpu::{groups, Binding, Gpu, PipelineKey};

/// The WGSL source.
pub(crate) fn source() -> String {
    with_constants(&[], include_str!("../../shaders/column_sum.wgsl"))
}

const BINDINGS: [Binding; 3] = [Binding::Uniform, Binding::Read, Binding::ReadWrite];

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    out_offset: u32,
    out2_offset: u32,
    accumulate: u32,
    _pad: [u32; 3],
}

/// Records `dst[out..out+cols] (+)= Σ_rows src` and the same into `dst[out2..]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode(
    gpu: &Gpu,
    pass: &mut wgpu::ComputePass<'_>,
    src: &wgpu::Buffer,
    rows: usize,
    cols: usize,
    dst: &wgpu::Buffer,
    out_offsets: (usize, usize),
    accumulate: bool,
) -> Result<()> {
    let wg = [groups(cols, 64), 1, 1];
    gpu.check_dispatch("the column sum", wg)?;
    let key = PipelineKey::plain("column_sum", "column_sum");
    let pipeline = gpu.pipeline(key, &[&BINDINGS], 0, source)?;
    let params = Params {
        rows: rows as u32,
        cols: cols as u32,
        out_offset: out_offsets.0 as u32,
        out2_offset: out_offsets.1 as u32,
        accumulate: accumulate as u32,
        _pad: [0; 3],
    };
    let uniform = gpu.uniform("column sum params", &params)?;
    let group = gpu.bind_group(&pipeline, 0, &[&uniform, src, dst]);
    gpu.launch(pass, &pipeline, &group, wg);
    Ok(())
}
