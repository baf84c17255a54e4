//! `column_sum.wgsl`: column sums of a row-major matrix (the bias gradients).

use super::{bind_group, bind_group_layout, groups, pipeline, Slot};
use crate::error::Result;
use crate::gpu::Gpu;

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

pub(crate) struct ColumnSumKernel {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl ColumnSumKernel {
    pub fn new(device: &wgpu::Device) -> Self {
        let layout = bind_group_layout(
            device,
            "column_sum",
            &[Slot::Uniform, Slot::Read, Slot::ReadWrite],
        );
        let pipeline = pipeline(device, "column_sum.wgsl", "column_sum", &layout);
        ColumnSumKernel { layout, pipeline }
    }

    /// Records `dst[out..out+cols] (+)= Σ_rows src` and the same into `dst[out2..]`.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
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
        let params = Params {
            rows: rows as u32,
            cols: cols as u32,
            out_offset: out_offsets.0 as u32,
            out2_offset: out_offsets.1 as u32,
            accumulate: accumulate as u32,
            _pad: [0; 3],
        };
        let uniform = gpu.uniform("column sum params", &params)?;
        let group = bind_group(gpu.device(), &self.layout, &[&uniform, src, dst]);
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &group, &[]);
        gpu.dispatch(pass, [wg[0], wg[1], wg[2]]);
        Ok(())
    }
}
