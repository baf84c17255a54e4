//! `gemm.wgsl`: C = op(A)·op(B) (+C) (+bias), register-tiled, with vec4 loads where the
//! operands allow them.

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
    /// `gemm` (scalar loads, any operands) and `gemm_vec4`.
    scalar: wgpu::ComputePipeline,
    vec4: wgpu::ComputePipeline,
}

impl Operand<'_> {
    /// Whether the vec4 entry point can stage this operand: its offset and row stride are
    /// multiples of 4, and so is its extent along memory (`contiguous`), so that each vec4 it
    /// loads lies wholly inside or outside the matrix.
    fn vec4_aligned(&self, contiguous: usize) -> bool {
        [self.offset, self.stride, contiguous]
            .iter()
            .all(|n| n.is_multiple_of(4))
    }
}

impl Gemm<'_> {
    /// Whether both operands can be loaded as vec4 (A is `[m, k]`, stored `[k, m]` when
    /// transposed; B is `[k, n]`, stored `[n, k]` when transposed).
    pub fn vec4_loads(&self) -> bool {
        let a_run = if self.a.transposed { self.m } else { self.k };
        let b_run = if self.b.transposed { self.k } else { self.n };
        self.a.vec4_aligned(a_run) && self.b.vec4_aligned(b_run)
    }
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
                // A and B again, seen as vec4 by `gemm_vec4`.
                Slot::Read,
                Slot::Read,
            ],
        );
        GemmKernel {
            scalar: pipeline(device, "gemm.wgsl", "gemm", &layout),
            vec4: pipeline(device, "gemm.wgsl", "gemm_vec4", &layout),
            layout,
        }
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
            &[
                &uniform,
                op.a.buffer,
                op.b.buffer,
                bias_buffer,
                op.c,
                op.a.buffer,
                op.b.buffer,
            ],
        );
        pass.set_pipeline(if op.vec4_loads() {
            &self.vec4
        } else {
            &self.scalar
        });
        pass.set_bind_group(0, &group, &[]);
        gpu.dispatch(pass, [wg[0], wg[1], wg[2]]);
        Ok(())
    }
}
