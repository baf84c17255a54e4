// Tiled matrix product with register tiles:
//     C[M,N] = op(A)[M,K] · op(B)[K,N]  (+ C when accumulating)  (+ bias[n] + bias2[n])
// op(A) is A or Aᵀ, op(B) is B or Bᵀ (flags). Operands are views into larger buffers: element
// offsets and row strides come in the uniform, so parameters can live in one arena buffer whose
// tensors are not aligned to the storage-binding offset alignment.
//
// Each workgroup computes a TILE_M × TILE_N block of C; each of its 16×16 invocations keeps a 4×4
// register tile (rows 4·ly .. 4·ly+3, columns 4·lx .. 4·lx+3). Both operands go through
// workgroup memory in TILE_K slices, k-major and as vec4 along M and N, so that each k of the
// inner loop is two vec4 reads from workgroup memory for 16 multiply-adds.
//
// Split K: workgroup row z of the grid takes the k in [z·k_chunk, (z+1)·k_chunk), so that no
// invocation walks more than k_chunk / TILE_K tiles (llvmpipe stops an invocation's loops
// after 65,535 trips; a long serial walk is slow on GPUs too). With PARTIAL, the product of
// chunk z goes to C + z·M·N and `sum_splits` adds the chunks up in order (deterministic) into
// the real C, with the biases and the accumulation.
//
// Two variants of the module differ only in how they load the slices from memory: with
// VEC4_LOADS = 0 scalars, for any offsets and sizes; with VEC4_LOADS = 1 one vec4 of each
// operand per invocation, through vec4 views of the same buffers, where both operands' offsets,
// row strides and contiguous extents are multiples of 4 (the host checks; PyTorch-sized models
// qualify).
//
// TILE_M, TILE_N, TILE_K, THREADS and the flags come from the host (kernels/gemm.rs), which
// also expands the loops marked @unroll.

// 16×16 invocations of 4×4 outputs cover the tile; one slice of each operand is one vec4 per
// invocation, or 4×4 blocks for a quarter of them.
const_assert TILE_M == 64u;
const_assert TILE_N == 64u;
const_assert TILE_M * TILE_K == 4u * THREADS;
const_assert TILE_N * TILE_K == 4u * THREADS;

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
    k_chunk: u32, // a multiple of TILE_K
    splits: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read> a4: array<vec4<f32>>; // a, seen as vec4
@group(0) @binding(6) var<storage, read> b4: array<vec4<f32>>; // b, seen as vec4

// A's slice [TILE_K][TILE_M / 4], then B's [TILE_K][TILE_N / 4]: element (kk, r) of an operand is
// tiles[base + kk·16 + r/4][r%4]. Always written as whole vec4s: a store to one component of a
// shared vector may be compiled as a read-modify-write of all four (a known DXC bug), which would
// race between invocations.
const A_TILE: u32 = 0u;
const B_TILE: u32 = TILE_K * TILE_M / 4u;
var<workgroup> tiles: array<vec4<f32>, TILE_K * (TILE_M + TILE_N) / 4u>;

// Element (line, kk) of operand A (line = row) or B (line = column), zero outside it. An operand
// is stored line-major ([M, K] for A, [N, K] for Bᵀ) or K-major ([K, M] for Aᵀ, [K, N] for B).
fn load(b_operand: bool, line: u32, kk: u32) -> f32 {
    var lines = p.m;
    var base = p.a_offset;
    var ld = p.lda;
    var k_major = (p.flags & TRANS_A) != 0u;
    if (b_operand) {
        lines = p.n;
        base = p.b_offset;
        ld = p.ldb;
        k_major = (p.flags & TRANS_B) == 0u;
    }
    if (line >= lines || kk >= p.k) {
        return 0.0;
    }
    let i = select(base + line * ld + kk, base + kk * ld + line, k_major);
    if (b_operand) {
        return b[i];
    }
    return a[i];
}

fn load_a(row: u32, kk: u32) -> f32 {
    return load(false, row, kk);
}

fn load_b(kk: u32, col: u32) -> f32 {
    return load(true, col, kk);
}

// The k range of this workgroup's chunk.
fn k_range(z: u32) -> vec2<u32> {
    let begin = z * p.k_chunk;
    return vec2<u32>(begin, min(p.k, begin + p.k_chunk));
}

// This workgroup's block of C (or of its chunk's partial product), staging the slices with
// vec4 loads (VEC4_LOADS = 1, one variant of the module) or scalar ones.
@compute @workgroup_size(16, 16, 1)
fn gemm(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let lid = local.xy;
    let row0 = wg.y * TILE_M;
    let col0 = wg.x * TILE_N;
    let range = k_range(wg.z);
    var acc: array<vec4<f32>, 4>; // acc[i][j]: row 4 ly + i, column 4 lx + j
    for (var k0 = range.x; k0 < range.y; k0 += TILE_K) {
        if (VEC4_LOADS != 0u) {
            stage_vec4(row0, col0, li, k0);
        } else {
            stage_scalar(row0, col0, li, k0);
        }
        workgroupBarrier();
        multiply_tiles(lid, &acc);
        workgroupBarrier();
    }
    store(row0, col0, wg.z, lid, acc);
}

// Each invocation stages one vec4 of each tile (4 rows of A, 4 columns of B, at one k), whole.
// The index split follows the operand's memory order so that neighbouring invocations read
// neighbouring addresses.
fn stage_scalar(row0: u32, col0: u32, li: u32, k0: u32) {
    var r: u32;
    var kk: u32;
    if ((p.flags & TRANS_A) != 0u) { // stored [K, M]: the 4 rows are contiguous
        kk = li / (TILE_M / 4u);
        r = (li % (TILE_M / 4u)) * 4u;
    } else { // stored [M, K]: neighbours take neighbouring k
        kk = li % TILE_K;
        r = (li / TILE_K) * 4u;
    }
    tiles[A_TILE + kk * (TILE_M / 4u) + r / 4u] = vec4<f32>(
        load_a(row0 + r, k0 + kk),
        load_a(row0 + r + 1u, k0 + kk),
        load_a(row0 + r + 2u, k0 + kk),
        load_a(row0 + r + 3u, k0 + kk),
    );
    var cc: u32;
    if ((p.flags & TRANS_B) != 0u) { // stored [N, K]: neighbours take neighbouring k
        kk = li % TILE_K;
        cc = (li / TILE_K) * 4u;
    } else { // stored [K, N]: the 4 columns are contiguous
        kk = li / (TILE_N / 4u);
        cc = (li % (TILE_N / 4u)) * 4u;
    }
    tiles[B_TILE + kk * (TILE_N / 4u) + cc / 4u] = vec4<f32>(
        load_b(k0 + kk, col0 + cc),
        load_b(k0 + kk, col0 + cc + 1u),
        load_b(k0 + kk, col0 + cc + 2u),
        load_b(k0 + kk, col0 + cc + 3u),
    );
}

// A vec4 of operand `b_operand ? b : a` at vec4 index i.
fn operand4(b_operand: bool, i: u32) -> vec4<f32> {
    if (b_operand) {
        return b4[i];
    }
    return a4[i];
}

// Stages a 4×4 block of an operand stored with K contiguous: lines line0 .. line0+3 (rows of A,
// columns of B) of `lines` in all, at k .. k+3 of the slice at k0, read as 4 vec4 and stored
// transposed (k-major) into the operand's tile at `tile`.
fn stage_block(b_operand: bool, tile: u32, base: u32, ld: u32, lines: u32, line0: u32, kk: u32, k0: u32) {
    var block: array<vec4<f32>, 4>; // block[q]: line line0 + q, k kk .. kk+3
    // @unroll
    for (var q = 0u; q < 4u; q++) {
        if (line0 + q < lines && k0 + kk < p.k) {
            block[q] = operand4(b_operand, (base + (line0 + q) * ld + k0 + kk) / 4u);
        }
    }
    let lines_in_tile = line0 % TILE_M; // TILE_M == TILE_N
    // @unroll
    for (var j = 0u; j < 4u; j++) {
        tiles[tile + (kk + j) * (TILE_M / 4u) + lines_in_tile / 4u] =
            vec4<f32>(block[0][j], block[1][j], block[2][j], block[3][j]);
    }
}

// Stages one vec4 of an operand stored K-major: 4 neighbouring lines (rows of A, columns of B)
// of `lines` in all at one k of the slice at k0, from line0 on; one per invocation.
fn stage_lines(b_operand: bool, tile: u32, base: u32, ld: u32, lines: u32, line0: u32, li: u32, k0: u32) {
    let kk = li / (TILE_M / 4u); // TILE_M == TILE_N
    let l = (li % (TILE_M / 4u)) * 4u;
    var v = vec4<f32>(0.0);
    if (line0 + l < lines && k0 + kk < p.k) {
        v = operand4(b_operand, (base + (k0 + kk) * ld + line0 + l) / 4u);
    }
    tiles[tile + kk * (TILE_M / 4u) + l / 4u] = v;
}

// Loads are vec4 along each operand's contiguous axis; a vec4 lies wholly inside or outside the
// matrix. Where that axis is the tile's vec4 axis (rows of Aᵀ, columns of B), every invocation
// moves one vec4; where it is K, 4×4 blocks are stored transposed, by a quarter of the
// invocations: A's the first 64, B's the last 64, so that with both operands K-contiguous 128
// share the work.
fn stage_vec4(row0: u32, col0: u32, li: u32, k0: u32) {
    let blocks = TILE_M * TILE_K / 16u;
    if ((p.flags & TRANS_A) != 0u) { // A stored [K, M]: 4 rows of one k
        stage_lines(false, A_TILE, p.a_offset, p.lda, p.m, row0, li, k0);
    } else if (li < blocks) { // A stored [M, K]: a block of 4 rows × 4 k
        let kk = (li % (TILE_K / 4u)) * 4u;
        let r = (li / (TILE_K / 4u)) * 4u;
        stage_block(false, A_TILE, p.a_offset, p.lda, p.m, row0 + r, kk, k0);
    }
    if ((p.flags & TRANS_B) == 0u) { // B stored [K, N]: 4 columns of one k
        stage_lines(true, B_TILE, p.b_offset, p.ldb, p.n, col0, li, k0);
    } else if (li >= THREADS - blocks) { // B stored [N, K]: 4 columns × 4 k
        let block_index = li - (THREADS - blocks);
        let kk = (block_index % (TILE_K / 4u)) * 4u;
        let cc = (block_index / (TILE_K / 4u)) * 4u;
        stage_block(true, B_TILE, p.b_offset, p.ldb, p.n, col0 + cc, kk, k0);
    }
}

// acc += the staged slices' product for this invocation's 4×4 register tile.
fn multiply_tiles(lid: vec2<u32>, acc: ptr<function, array<vec4<f32>, 4>>) {
    // @unroll
    for (var kk = 0u; kk < TILE_K; kk++) {
        let av = tiles[A_TILE + kk * (TILE_M / 4u) + lid.y];
        let bv = tiles[B_TILE + kk * (TILE_N / 4u) + lid.x];
        (*acc)[0] += av.x * bv;
        (*acc)[1] += av.y * bv;
        (*acc)[2] += av.z * bv;
        (*acc)[3] += av.w * bv;
    }
}

// The value of C at `idx` with the biases and the accumulation the flags ask for.
fn finished(v: f32, col: u32, idx: u32) -> f32 {
    var out = v;
    if ((p.flags & BIAS) != 0u) {
        out += bias[p.bias_offset + col];
    }
    if ((p.flags & BIAS2) != 0u) {
        out += bias[p.bias2_offset + col];
    }
    if ((p.flags & ACCUMULATE) != 0u) {
        out += c[idx];
    }
    return out;
}

// Writes the register tile to C, or to chunk z's partial product.
fn store(row0: u32, col0: u32, z: u32, lid: vec2<u32>, acc: array<vec4<f32>, 4>) {
    let partial = (p.flags & PARTIAL) != 0u;
    // @unroll
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + 4u * lid.y + i;
        // @unroll
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + 4u * lid.x + j;
            if (row < p.m && col < p.n) {
                if (partial) {
                    c[(z * p.m + row) * p.n + col] = acc[i][j];
                } else {
                    let idx = p.c_offset + row * p.ldc + col;
                    c[idx] = finished(acc[i][j], col, idx);
                }
            }
        }
    }
}

// C = Σ over the chunks of their partial products (in `a`, [splits, M, N]), in order, with the
// biases and the accumulation: one invocation per element of C.
@compute @workgroup_size(THREADS, 1, 1)
fn sum_splits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * THREADS;
    let mn = p.m * p.n;
    if (i >= mn) {
        return;
    }
    var v = 0.0;
    for (var z = 0u; z < p.splits; z++) {
        v += a[z * mn + i];
    }
    let row = i / p.n;
    let col = i % p.n;
    let idx = p.c_offset + row * p.ldc + col;
    c[idx] = finished(v, col, idx);
}
