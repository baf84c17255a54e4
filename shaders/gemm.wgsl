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
// Two entry points differ only in how they load the slices from memory: `gemm` loads scalars and
// takes any offsets and sizes; `gemm_vec4` loads one vec4 of each operand per invocation, through
// vec4 views of the same buffers, where both operands' offsets, row strides and contiguous
// extents are multiples of 4 (the host checks; PyTorch-sized models qualify).

// TILE_M, TILE_N, TILE_K and the flags (TRANS_A, TRANS_B, ACCUMULATE, BIAS, BIAS2) come from the
// host (kernels/gemm.rs).
const THREADS: u32 = 256u;
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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read> a4: array<vec4<f32>>; // a, seen as vec4
@group(0) @binding(6) var<storage, read> b4: array<vec4<f32>>; // b, seen as vec4

// [TILE_K][TILE_M / 4] and [TILE_K][TILE_N / 4]: element (kk, r) is a_tile[kk·16 + r/4][r%4].
// Always written as whole vec4s: a store to one component of a shared vector may be compiled
// as a read-modify-write of all four (a known DXC bug), which would race between invocations.
var<workgroup> a_tile: array<vec4<f32>, TILE_K * TILE_M / 4u>;
var<workgroup> b_tile: array<vec4<f32>, TILE_K * TILE_N / 4u>;

fn load_a(row: u32, kk: u32) -> f32 {
    if (row >= p.m || kk >= p.k) {
        return 0.0;
    }
    if ((p.flags & TRANS_A) != 0u) {
        return a[p.a_offset + kk * p.lda + row];
    }
    return a[p.a_offset + row * p.lda + kk];
}

fn load_b(kk: u32, col: u32) -> f32 {
    if (kk >= p.k || col >= p.n) {
        return 0.0;
    }
    if ((p.flags & TRANS_B) != 0u) {
        return b[p.b_offset + col * p.ldb + kk];
    }
    return b[p.b_offset + kk * p.ldb + col];
}

@compute @workgroup_size(16, 16, 1)
fn gemm(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row0 = wg.y * TILE_M;
    let col0 = wg.x * TILE_N;
    let trans_a = (p.flags & TRANS_A) != 0u;
    let trans_b = (p.flags & TRANS_B) != 0u;

    var acc: array<vec4<f32>, 4>; // acc[i][j]: row 4 ly + i, column 4 lx + j

    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        // Each invocation stages one vec4 of each tile (4 rows of A, 4 columns of B, at one k),
        // whole: invocations never write parts of the same vec4. The index split follows the
        // operand's memory order so that neighbouring invocations read neighbouring addresses.
        var r: u32;
        var kk: u32;
        if (trans_a) { // stored [K, M]: the 4 rows are contiguous
            kk = li / (TILE_M / 4u);
            r = (li % (TILE_M / 4u)) * 4u;
        } else { // stored [M, K]: neighbours take neighbouring k
            kk = li % TILE_K;
            r = (li / TILE_K) * 4u;
        }
        a_tile[kk * (TILE_M / 4u) + r / 4u] = vec4<f32>(
            load_a(row0 + r, k0 + kk),
            load_a(row0 + r + 1u, k0 + kk),
            load_a(row0 + r + 2u, k0 + kk),
            load_a(row0 + r + 3u, k0 + kk),
        );
        var cc: u32;
        if (trans_b) { // stored [N, K]: neighbours take neighbouring k
            kk = li % TILE_K;
            cc = (li / TILE_K) * 4u;
        } else { // stored [K, N]: the 4 columns are contiguous
            kk = li / (TILE_N / 4u);
            cc = (li % (TILE_N / 4u)) * 4u;
        }
        b_tile[kk * (TILE_N / 4u) + cc / 4u] = vec4<f32>(
            load_b(k0 + kk, col0 + cc),
            load_b(k0 + kk, col0 + cc + 1u),
            load_b(k0 + kk, col0 + cc + 2u),
            load_b(k0 + kk, col0 + cc + 3u),
        );
        workgroupBarrier();
        multiply_tiles(lid.xy, &acc);
        workgroupBarrier();
    }
    store(row0, col0, lid.xy, acc);
}

@compute @workgroup_size(16, 16, 1)
fn gemm_vec4(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row0 = wg.y * TILE_M;
    let col0 = wg.x * TILE_N;
    let trans_a = (p.flags & TRANS_A) != 0u;
    let trans_b = (p.flags & TRANS_B) != 0u;

    var acc: array<vec4<f32>, 4>;

    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        // Loads are vec4 along each operand's contiguous axis; a vec4 lies wholly inside or
        // outside the matrix. Where that axis is the tile's vec4 axis (rows of Aᵀ, columns of
        // B), every invocation moves one vec4. Where it is K, 64 invocations each load a 4×4
        // block and store it transposed, so that no two invocations write parts of one vec4.
        if (trans_a) { // A stored [K, M]: 4 rows of one k
            let kk = li / (TILE_M / 4u);
            let r = (li % (TILE_M / 4u)) * 4u;
            var v = vec4<f32>(0.0);
            if (row0 + r < p.m && k0 + kk < p.k) {
                v = a4[(p.a_offset + (k0 + kk) * p.lda + row0 + r) / 4u];
            }
            a_tile[kk * (TILE_M / 4u) + r / 4u] = v;
        } else if (li < TILE_M * TILE_K / 16u) { // A stored [M, K]: a block of 4 rows × 4 k
            let kk = (li % (TILE_K / 4u)) * 4u;
            let r = (li / (TILE_K / 4u)) * 4u;
            var block: array<vec4<f32>, 4>; // block[q]: row r + q, k kk .. kk+3
            for (var q = 0u; q < 4u; q++) {
                if (row0 + r + q < p.m && k0 + kk < p.k) {
                    block[q] = a4[(p.a_offset + (row0 + r + q) * p.lda + k0 + kk) / 4u];
                }
            }
            for (var j = 0u; j < 4u; j++) {
                a_tile[(kk + j) * (TILE_M / 4u) + r / 4u] =
                    vec4<f32>(block[0][j], block[1][j], block[2][j], block[3][j]);
            }
        }
        if (!trans_b) { // B stored [K, N]: 4 columns of one k
            let kk = li / (TILE_N / 4u);
            let cc = (li % (TILE_N / 4u)) * 4u;
            var v = vec4<f32>(0.0);
            if (col0 + cc < p.n && k0 + kk < p.k) {
                v = b4[(p.b_offset + (k0 + kk) * p.ldb + col0 + cc) / 4u];
            }
            b_tile[kk * (TILE_N / 4u) + cc / 4u] = v;
        } else if (li >= THREADS - TILE_N * TILE_K / 16u) { // B stored [N, K]: 4 columns × 4 k
            // The last 64 invocations, so that with A also transposed 128 share the work.
            let block_index = li - (THREADS - TILE_N * TILE_K / 16u);
            let kk = (block_index % (TILE_K / 4u)) * 4u;
            let cc = (block_index / (TILE_K / 4u)) * 4u;
            var block: array<vec4<f32>, 4>; // block[q]: column cc + q, k kk .. kk+3
            for (var q = 0u; q < 4u; q++) {
                if (col0 + cc + q < p.n && k0 + kk < p.k) {
                    block[q] = b4[(p.b_offset + (col0 + cc + q) * p.ldb + k0 + kk) / 4u];
                }
            }
            for (var j = 0u; j < 4u; j++) {
                b_tile[(kk + j) * (TILE_N / 4u) + cc / 4u] =
                    vec4<f32>(block[0][j], block[1][j], block[2][j], block[3][j]);
            }
        }
        workgroupBarrier();
        multiply_tiles(lid.xy, &acc);
        workgroupBarrier();
    }
    store(row0, col0, lid.xy, acc);
}

// acc += the staged slices' product for this invocation's 4×4 register tile.
fn multiply_tiles(lid: vec2<u32>, acc: ptr<function, array<vec4<f32>, 4>>) {
    for (var kk = 0u; kk < TILE_K; kk++) {
        let av = a_tile[kk * (TILE_M / 4u) + lid.y];
        let bv = b_tile[kk * (TILE_N / 4u) + lid.x];
        (*acc)[0] += av.x * bv;
        (*acc)[1] += av.y * bv;
        (*acc)[2] += av.z * bv;
        (*acc)[3] += av.w * bv;
    }
}

// Writes the register tile to C, with the biases and the accumulation the flags ask for.
fn store(row0: u32, col0: u32, lid: vec2<u32>, acc: array<vec4<f32>, 4>) {
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + 4u * lid.y + i;
        if (row >= p.m) {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + 4u * lid.x + j;
            if (col >= p.n) {
                break;
            }
            var v = acc[i][j];
            if ((p.flags & BIAS) != 0u) {
                v += bias[p.bias_offset + col];
            }
            if ((p.flags & BIAS2) != 0u) {
                v += bias[p.bias2_offset + col];
            }
            let idx = p.c_offset + row * p.ldc + col;
            if ((p.flags & ACCUMULATE) != 0u) {
                v += c[idx];
            }
            c[idx] = v;
        }
    }
}
