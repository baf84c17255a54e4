//! `gemm.wgsl`: C = op(A)·op(B) (+C) (+bias), register-tiled, with vec4 loads where the
//! operands allow them.

use super::{generated, LOOP_BUDGET};
use crate::error::{Error, Result};
use crate::gpu::{groups, Binding, Gpu, PipelineKey};

const TILE_M: usize = 64;
const TILE_N: usize = 64;
const TILE_K: usize = 16;
const THREADS: usize = 256;
/// The most K values one workgroup walks: longer products are split into chunks of this many
/// (1,024 tiles of TILE_K) whose partial products a second pass adds up.
pub(crate) const K_CHUNK: usize = 16_384;

const TRANS_A: u32 = 1;
const TRANS_B: u32 = 2;
const ACCUMULATE: u32 = 4;
const BIAS: u32 = 8;
const BIAS2: u32 = 16;
const PARTIAL: u32 = 32;

/// The WGSL source with the host's constants: scalar loads, or vec4 loads.
pub(crate) fn source(vec4_loads: bool) -> String {
    generated(
        &[
            ("VEC4_LOADS", u32::from(vec4_loads)),
            ("TILE_M", TILE_M as u32),
            ("TILE_N", TILE_N as u32),
            ("TILE_K", TILE_K as u32),
            ("THREADS", THREADS as u32),
            ("PARTIAL", PARTIAL),
            ("TRANS_A", TRANS_A),
            ("TRANS_B", TRANS_B),
            ("ACCUMULATE", ACCUMULATE),
            ("BIAS", BIAS),
            ("BIAS2", BIAS2),
        ],
        include_str!("../../shaders/gemm.wgsl"),
    )
}

const BINDINGS: [Binding; 7] = [
    Binding::Uniform,
    Binding::Read,
    Binding::Read,
    Binding::Read,
    Binding::ReadWrite,
    // A and B again, seen as vec4 by `gemm_vec4`.
    Binding::Read,
    Binding::Read,
];

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
    k_chunk: u32,
    splits: u32,
    _pad: [u32; 2],
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

impl<'a> Operand<'a> {
    /// The row-major matrix at element `offset` of `buffer`, rows `stride` apart.
    pub fn new(buffer: &'a wgpu::Buffer, offset: usize, stride: usize) -> Operand<'a> {
        Operand {
            buffer,
            offset,
            stride,
            transposed: false,
        }
    }

    /// The same matrix, used transposed.
    pub fn t(self) -> Operand<'a> {
        Operand {
            transposed: true,
            ..self
        }
    }

    /// Whether the vec4 entry point can stage this operand: its offset and row stride are
    /// multiples of 4, and so is its extent along memory (`contiguous`), so that each vec4 it
    /// loads lies wholly inside or outside the matrix.
    fn vec4_aligned(&self, contiguous: usize) -> bool {
        [self.offset, self.stride, contiguous]
            .iter()
            .all(|n| n.is_multiple_of(4))
    }
}

impl<'a> Gemm<'a> {
    /// `C[m, n] = A · B` (`[m, k]` by `[k, n]`), written to `c` from element `c_offset`.
    pub fn new(
        (m, n, k): (usize, usize, usize),
        a: Operand<'a>,
        b: Operand<'a>,
        (c, c_offset): (&'a wgpu::Buffer, usize),
    ) -> Gemm<'a> {
        Gemm {
            m,
            n,
            k,
            a,
            b,
            c,
            c_offset,
            accumulate: false,
            bias: None,
        }
    }

    /// Added to what C holds instead of overwriting it, when `yes`.
    pub fn accumulate(self, yes: bool) -> Gemm<'a> {
        Gemm {
            accumulate: yes,
            ..self
        }
    }

    /// Plus the row `bias[first..]` (and `bias[second..]`) on every row of C.
    pub fn bias(self, bias: &'a wgpu::Buffer, first: usize, second: Option<usize>) -> Gemm<'a> {
        Gemm {
            bias: Some((bias, first, second)),
            ..self
        }
    }

    /// Whether both operands can be loaded as vec4 (A is `[m, k]`, stored `[k, m]` when
    /// transposed; B is `[k, n]`, stored `[n, k]` when transposed).
    pub fn vec4_loads(&self) -> bool {
        let a_run = if self.a.transposed { self.m } else { self.k };
        let b_run = if self.b.transposed { self.k } else { self.n };
        self.a.vec4_aligned(a_run) && self.b.vec4_aligned(b_run)
    }
}

/// Chunks of K a product of `k` is split into.
pub(crate) fn splits(k: usize) -> usize {
    k.div_ceil(K_CHUNK).max(1)
}

/// Trips of an invocation's loops: its walk over one chunk of K, or over the chunks.
pub(crate) fn loop_trips(k: usize) -> u64 {
    (K_CHUNK.min(k).div_ceil(TILE_K) as u64 + 1).max(splits(k) as u64 + 1)
}

/// Records the product into `pass`: one dispatch, or (K longer than [`K_CHUNK`]) one over
/// the chunks of K into a scratch buffer and one that adds them up.
pub(crate) fn encode(gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, op: &Gemm<'_>) -> Result<()> {
    let splits = splits(op.k);
    let wg = [groups(op.n, TILE_N), groups(op.m, TILE_M), splits as u32];
    gpu.check_dispatch("a matrix product", wg)?;
    let trips = loop_trips(op.k);
    if trips > LOOP_BUDGET {
        return Err(Error::Limit {
            what: format!("a matrix product over K = {}", op.k),
            limit: "loop trips per invocation (llvmpipe stops loops after 65,535)",
            needed: trips,
            available: LOOP_BUDGET,
        });
    }
    let vec4 = op.vec4_loads();
    let key = |entry| PipelineKey {
        shader: "gemm",
        entry,
        variant: if vec4 { "vec4 loads" } else { "scalar loads" }.into(),
    };
    let pipeline = gpu.pipeline(key("gemm"), &[&BINDINGS], 0, || source(vec4))?;
    let mut params = params_of(op);
    params.k_chunk = K_CHUNK as u32;
    params.splits = splits as u32;
    let bias = op.bias.map_or(op.b.buffer, |(buffer, ..)| buffer);
    // The scalar entry point never reads the vec4 views, but they must still be bindable
    // (at least one vec4) when an operand is smaller.
    let unused = gpu.scratch("unused vec4 view", 4)?;
    let (a4, b4): (&wgpu::Buffer, &wgpu::Buffer) = if vec4 {
        (op.a.buffer, op.b.buffer)
    } else {
        (&unused, &unused)
    };
    let operands = |c| [op.a.buffer, op.b.buffer, bias, c, a4, b4];
    if splits == 1 {
        let group = gpu.uniform_group(&pipeline, "gemm params", &params, &operands(op.c))?;
        gpu.launch(pass, &pipeline, &group, wg);
        return Ok(());
    }
    // Every partial product is written before `sum_splits` reads it.
    let partials = gpu.scratch("split-K partial products", splits * op.m * op.n)?;
    let chunked = Params {
        flags: params.flags | PARTIAL,
        ..params
    };
    let group = gpu.uniform_group(&pipeline, "gemm params", &chunked, &operands(&partials))?;
    gpu.launch(pass, &pipeline, &group, wg);
    let sum = gpu.pipeline(key("sum_splits"), &[&BINDINGS], 0, || source(vec4))?;
    let grid = gpu.grid_2d(
        "the sum of a split matrix product",
        (op.m * op.n).div_ceil(THREADS),
    )?;
    let sums = [&partials, op.b.buffer, bias, op.c, a4, b4];
    let group = gpu.uniform_group(&sum, "gemm params", &params, &sums)?;
    gpu.launch(pass, &sum, &group, grid);
    Ok(())
}

/// The uniform of `op` (one chunk).
fn params_of(op: &Gemm<'_>) -> Params {
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
    let (bias_offset, bias2_offset) = match op.bias {
        Some((_, first, second)) => {
            flags |= BIAS;
            if second.is_some() {
                flags |= BIAS2;
            }
            (first, second.unwrap_or(0))
        }
        None => (0, 0),
    };
    Params {
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
        k_chunk: K_CHUNK as u32,
        splits: 1,
        _pad: [0; 2],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Up to K = 2^28 (a GEMM over all T·B rows of a 1 GiB operand), an invocation makes
    /// fewer loop trips than the budget, where one walk over K would make K / 16; beyond,
    /// `encode` refuses with `Error::Limit`.
    #[test]
    fn an_invocation_stays_under_the_loop_budget() {
        for k in [
            1,
            16,
            16_384,
            16_385,
            58_300,
            65_536,
            300_000,
            4_194_304,
            1 << 28,
        ] {
            assert!(loop_trips(k) <= LOOP_BUDGET, "K = {k}");
        }
        assert!(((1u64 << 28) / TILE_K as u64) > LOOP_BUDGET);
        assert!(loop_trips(1 << 30) > LOOP_BUDGET);
        assert_eq!(K_CHUNK % TILE_K, 0, "chunks are whole tiles");
    }
}
