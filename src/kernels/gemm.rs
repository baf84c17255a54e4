//! `gemm.wgsl`: C = op(A)·op(B) (+C) (+bias), register-tiled.

use super::{bind_group, bind_group_layout, groups, pipeline, Slot};
use crate::error::Result;
use crate::gpu::Gpu;

const TILE_M: usize = 64;
const TILE_N: usize = 64;

const TRANS_A: u32 = 1;
const TRANS_B: u32 = 2;
const ACCUMULATE: u32 = 4;
const BIAS: u32 = 8;
const BIAS2: u32 = 16;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,
    a_offset: u32,
    b_offset: u32,
    c_offset: u32,
    bias_offset: u32,
    lda: u32,
    ldb: u32,
    ldc: u32,
    bias2_offset: u32,
}

/// A matrix operand: a row-major matrix at element `offset` of `buffer` with row stride
/// `stride`, used as is or transposed.
#[derive(Clone, Copy)]
pub(crate) struct Operand<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: usize,
    pub stride: usize,
    pub transposed: bool,
}

/// One product `C[m,n] = op(A)[m,k] · op(B)[k,n]`, optionally added to C and/or plus one or two
/// bias rows (element offsets into `bias`).
pub(crate) struct Gemm<'a> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: Operand<'a>,
    pub b: Operand<'a>,
    pub c: &'a wgpu::Buffer,
    pub c_offset: usize,
    pub accumulate: bool,
    pub bias: Option<(&'a wgpu::Buffer, usize, Option<usize>)>,
}

pub(crate) struct GemmKernel {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl GemmKernel {
    pub fn new(device: &wgpu::Device) -> Self {
        let layout = bind_group_layout(
            device,
            "gemm",
            &[
                Slot::Uniform,
                Slot::Read,
                Slot::Read,
                Slot::Read,
                Slot::ReadWrite,
            ],
        );
        let pipeline = pipeline(device, "gemm.wgsl", "gemm", &layout);
        GemmKernel { layout, pipeline }
    }

    /// Records the product into `pass`.
    pub fn encode(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, op: &Gemm<'_>) -> Result<()> {
        let wg = [groups(op.n, TILE_N), groups(op.m, TILE_M), 1];
        gpu.check_dispatch("a matrix product", wg)?;
        let mut flags = 0;
        if op.a.transposed {
            flags |= TRANS_A;
        }
        if op.b.transposed {
            flags |= TRANS_B;
        }
        if op.accumulate {
            flags |= ACCUMULATE;
        }
        let (bias_buffer, bias_offset, bias2_offset) = match op.bias {
            Some((buffer, first, second)) => {
                flags |= BIAS;
                if second.is_some() {
                    flags |= BIAS2;
                }
                (buffer, first, second.unwrap_or(0))
            }
            None => (op.b.buffer, 0, 0),
        };
        let params = Params {
            m: op.m as u32,
            n: op.n as u32,
            k: op.k as u32,
            flags,
            a_offset: op.a.offset as u32,
            b_offset: op.b.offset as u32,
            c_offset: op.c_offset as u32,
            bias_offset: bias_offset as u32,
            lda: op.a.stride as u32,
            ldb: op.b.stride as u32,
            ldc: op.n as u32,
            bias2_offset: bias2_offset as u32,
        };
        let uniform = gpu.uniform("gemm params", &params)?;
        let group = bind_group(
            gpu.device(),
            &self.layout,
            &[&uniform, op.a.buffer, op.b.buffer, bias_buffer, op.c],
        );
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(wg[0], wg[1], wg[2]);
        Ok(())
    }
}
