// Tiled matrix product with register tiles:
//     C[M,N] = op(A)[M,K] · op(B)[K,N]  (+ C when accumulating)  (+ bias[n] + bias2[n])
// op(A) is A or Aᵀ, op(B) is B or Bᵀ (flags). Operands are views into larger buffers: element
// offsets and row strides come in the uniform, so parameters can live in one arena buffer whose
// tensors are not aligned to the storage-binding offset alignment.
//
// Each workgroup computes a TILE_M × TILE_N block of C; each of its 16×16 invocations keeps a 4×4
// register tile (rows ly + 16·i, columns lx + 16·j, so that stores are coalesced). Both operands
// go through workgroup memory in TILE_K slices.

const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;
const THREADS: u32 = 256u;

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

// k-major so that the inner product loop reads consecutive rows / columns.
var<workgroup> a_tile: array<f32, 1024>; // [TILE_K][TILE_M]
var<workgroup> b_tile: array<f32, 1024>; // [TILE_K][TILE_N]

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

    var acc: array<vec4<f32>, 4>; // acc[i][j]: row ly + 16 i, column lx + 16 j

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
            a_tile[kk * TILE_M + r] = load_a(row0 + r, k0 + kk);

            var cc: u32;
            if (trans_b) {
                cc = e / TILE_K;
                kk = e % TILE_K;
            } else {
                kk = e / TILE_N;
                cc = e % TILE_N;
            }
            b_tile[kk * TILE_N + cc] = load_b(k0 + kk, col0 + cc);
        }
        workgroupBarrier();

        for (var kk = 0u; kk < TILE_K; kk++) {
            let bv = vec4<f32>(
                b_tile[kk * TILE_N + lid.x],
                b_tile[kk * TILE_N + lid.x + 16u],
                b_tile[kk * TILE_N + lid.x + 32u],
                b_tile[kk * TILE_N + lid.x + 48u],
            );
            for (var i = 0u; i < 4u; i++) {
                acc[i] += a_tile[kk * TILE_M + lid.y + 16u * i] * bv;
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y + 16u * i;
        if (row >= p.m) {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + 16u * j;
            if (col >= p.n) {
                continue;
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
