// One LSTM timestep backward, fused (haste's split: pointwise backward per step, weight
// gradients as GEMMs after the loop). For a slice of hidden units and batch rows:
//
//     dh_t  = dy[t] + dG_{t+1} · W_hh          (dh_n instead of the product when t = T-1)
//     dc_t  = dc_carry + dh_t ⊙ o ⊙ (1 - tanh²(c_t))
//     dG_t  = (dc_t ⊙ g ⊙ i(1-i),  dc_t ⊙ c_{t-1} ⊙ f(1-f),  dc_t ⊙ i ⊙ (1-g²),  dh_t ⊙ tanh(c_t) ⊙ o(1-o))
//     dc_carry ← dc_t ⊙ f                      (= dL/dc_{t-1})
//
// After the loop one more dispatch in H0 mode writes dh_0 = dG_0 · W_hh.
// The product dG_{t+1} · W_hh reads W_hh [4H, H] row-major along the hidden units, so loads are
// coalesced in PyTorch's layout. Tiling mirrors lstm_step: UNITS units × BATCH_TILE rows per
// workgroup, 4 batch rows per invocation, K_TILE slices of the 4H reduction in workgroup memory.
//
// state [3, B, H]: slot 0 = dh_n (input), slot 1 = dc carry (starts as dc_n), slot 2 = dh_0 (output).

const UNITS: u32 = 16u;
const BATCH_TILE: u32 = 16u;
const K_TILE: u32 = 16u;
const THREADS: u32 = 64u;

const H0_MODE: u32 = 2u; // slot flag: after the loop, write dh_0 = dG_0 · W_hh and stop

struct Dims {
    batch: u32,
    hidden: u32,
    w_offset: u32,
    steps: u32,
    dy_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<uniform> slot: vec4<u32>; // x = t, y = H0_MODE or 0 (dynamic offset)
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> gates: array<f32>;
@group(0) @binding(4) var<storage, read> cs: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dgates: array<f32>;
@group(0) @binding(7) var<storage, read_write> state: array<f32>;

var<workgroup> dg_tile: array<f32, 256>; // [BATCH_TILE][K_TILE]
var<workgroup> w_tile: array<f32, 256>;  // [K_TILE][UNITS]

@compute @workgroup_size(64, 1, 1)
fn lstm_step_back(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = slot.x;
    let h0_mode = (slot.y & H0_MODE) != 0u;
    let last = !h0_mode && t + 1u == dims.steps; // dh comes from dh_n, not from dG_{t+1}
    let batch = dims.batch;
    let hidden = dims.hidden;
    let four_h = 4u * hidden;
    let unit0 = wg.x * UNITS;
    let batch0 = wg.y * BATCH_TILE;
    let u = li % UNITS;
    let bg = li / UNITS;
    let bh = batch * hidden;

    // Recurrent part of dh: dG_{t+1} · W_hh (or dG_0 · W_hh in H0 mode).
    var acc = vec4<f32>(0.0);
    if (!last) {
        var src = t + 1u;
        if (h0_mode) {
            src = 0u;
        }
        let dg_base = src * batch * four_h;
        for (var k0 = 0u; k0 < four_h; k0 += K_TILE) {
            for (var q = 0u; q < 4u; q++) {
                let e = li + q * THREADS;
                let r = e / K_TILE;
                let kk = e % K_TILE;
                let b = batch0 + r;
                var v = 0.0;
                if (b < batch && k0 + kk < four_h) {
                    v = dgates[dg_base + b * four_h + k0 + kk];
                }
                dg_tile[e] = v;
            }
            for (var q = 0u; q < 4u; q++) {
                let e = li + q * THREADS;
                let kk = e / UNITS;
                let unit = unit0 + e % UNITS;
                var v = 0.0;
                if (unit < hidden && k0 + kk < four_h) {
                    v = params[dims.w_offset + (k0 + kk) * hidden + unit];
                }
                w_tile[e] = v;
            }
            workgroupBarrier();
            for (var kk = 0u; kk < K_TILE; kk++) {
                let w = w_tile[kk * UNITS + u];
                acc += w * vec4<f32>(
                    dg_tile[(bg * 4u) * K_TILE + kk],
                    dg_tile[(bg * 4u + 1u) * K_TILE + kk],
                    dg_tile[(bg * 4u + 2u) * K_TILE + kk],
                    dg_tile[(bg * 4u + 3u) * K_TILE + kk],
                );
            }
            workgroupBarrier();
        }
    }

    let j = unit0 + u;
    if (j >= hidden) {
        return;
    }
    for (var r = 0u; r < 4u; r++) {
        let b = batch0 + bg * 4u + r;
        if (b >= batch) {
            break;
        }
        let cell = b * hidden + j;
        if (h0_mode) {
            state[2u * bh + cell] = acc[r];
            continue;
        }
        var dh = dy[dims.dy_offset + t * bh + cell];
        if (last) {
            dh += state[cell];
        } else {
            dh += acc[r];
        }
        let grow = (t * batch + b) * four_h + j;
        let ig = gates[grow];
        let fg = gates[grow + hidden];
        let gg = gates[grow + 2u * hidden];
        let og = gates[grow + 3u * hidden];
        let c = cs[(t + 1u) * bh + cell];
        let c_prev = cs[t * bh + cell];
        let tc = tanh_precise(c);
        let dc = state[bh + cell] + dh * og * (1.0 - tc * tc);
        dgates[grow] = dc * gg * ig * (1.0 - ig);
        dgates[grow + hidden] = dc * c_prev * fg * (1.0 - fg);
        dgates[grow + 2u * hidden] = dc * ig * (1.0 - gg * gg);
        dgates[grow + 3u * hidden] = dh * tc * og * (1.0 - og);
        state[bh + cell] = dc * fg;
    }
}
