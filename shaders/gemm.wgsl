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

const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;
const THREADS: u32 = 256u;
// 16×16 invocations of 4×4 outputs cover the tile; one slice of each operand is one vec4 per
// invocation (or four scalars).
const_assert TILE_M == 64u;
const_assert TILE_N == 64u;
const_assert TILE_M * TILE_K == 4u * THREADS;
const_assert TILE_N * TILE_K == 4u * THREADS;

const TRANS_A: u32 = 1u;
const TRANS_B: u32 = 2u;
const ACCUMULATE: u32 = 4u;
const BIAS: u32 = 8u;
const BIAS2: u32 = 16u;

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
        // Each invocation stages 4 elements of each operand. The index split follows the operand's
        // memory order so that neighbouring invocations read neighbouring addresses.
        for (var q = 0u; q < 4u; q++) {
            let e = li + q * THREADS;
            var r: u32;
            var kk: u32;
            if (trans_a) {
                kk = e / TILE_M;
                r = e % TILE_M;
            } else {
                r = e / TILE_K;
                kk = e % TILE_K;
            }
            a_tile[(kk * TILE_M + r) / 4u][r % 4u] = load_a(row0 + r, k0 + kk);

            var cc: u32;
            if (trans_b) {
                cc = e / TILE_K;
                kk = e % TILE_K;
            } else {
                kk = e / TILE_N;
                cc = e % TILE_N;
            }
            b_tile[(kk * TILE_N + cc) / 4u][cc % 4u] = load_b(k0 + kk, col0 + cc);
        }
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
        // One vec4 of each operand per invocation, along the operand's contiguous axis; a vec4
        // lies wholly inside or outside the matrix.
        if (trans_a) { // A stored [K, M]: 4 rows of one k, one vec4 of the tile
            let kk = li / (TILE_M / 4u);
            let r = (li % (TILE_M / 4u)) * 4u;
            var v = vec4<f32>(0.0);
            if (row0 + r < p.m && k0 + kk < p.k) {
                v = a4[(p.a_offset + (k0 + kk) * p.lda + row0 + r) / 4u];
            }
            a_tile[(kk * TILE_M + r) / 4u] = v;
        } else { // A stored [M, K]: 4 k of one row
            let r = li / (TILE_K / 4u);
            let kk = (li % (TILE_K / 4u)) * 4u;
            var v = vec4<f32>(0.0);
            if (row0 + r < p.m && k0 + kk < p.k) {
                v = a4[(p.a_offset + (row0 + r) * p.lda + k0 + kk) / 4u];
            }
            for (var q = 0u; q < 4u; q++) {
                a_tile[((kk + q) * TILE_M + r) / 4u][r % 4u] = v[q];
            }
        }
        if (trans_b) { // B stored [N, K]: 4 k of one column
            let cc = li / (TILE_K / 4u);
            let kk = (li % (TILE_K / 4u)) * 4u;
            var v = vec4<f32>(0.0);
            if (col0 + cc < p.n && k0 + kk < p.k) {
                v = b4[(p.b_offset + (col0 + cc) * p.ldb + k0 + kk) / 4u];
            }
            for (var q = 0u; q < 4u; q++) {
                b_tile[((kk + q) * TILE_N + cc) / 4u][cc % 4u] = v[q];
            }
        } else { // B stored [K, N]: 4 columns of one k, one vec4 of the tile
            let kk = li / (TILE_N / 4u);
            let cc = (li % (TILE_N / 4u)) * 4u;
            var v = vec4<f32>(0.0);
            if (col0 + cc < p.n && k0 + kk < p.k) {
                v = b4[(p.b_offset + (k0 + kk) * p.ldb + col0 + cc) / 4u];
            }
            b_tile[(kk * TILE_N + cc) / 4u] = v;
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
