// One LSTM timestep of one layer and direction, fused: the recurrent product h_prev · W_hhᵀ for
// all four gates, the gate activations, the cell update and the output, in one dispatch.
//
//     G = xproj[t] + h_prev · W_hhᵀ            (xproj = x·W_ihᵀ + b_ih + b_hh, hoisted GEMM)
//     i, f, g, o = σ(G_i), σ(G_f), tanh(G_g), σ(G_o)
//     c_t = f ⊙ c_prev + i ⊙ g,   h_t = o ⊙ tanh(c_t)
//
// A workgroup owns UNITS hidden units (all four gate rows of each, so the cell update needs no
// exchange between workgroups) for BATCH_TILE batch rows; each invocation keeps the four gates of
// one unit for 4 batch rows in registers. h_prev and the W_hh rows go through workgroup memory in
// K_TILE slices.
//
// Layouts (D directions, direction d owns columns d·H .. d·H+H of the [.., D·H] buffers):
//   hs [T, B, D·H]    h_t of every step: the layer's output. The forward direction reads h_prev
//                     from t-1, the reverse direction from t+1; the step that has none reads the
//                     initial state.
//   cs [slots, B, D·H] c_t in slot t % slots (slots = T when training, 2 for inference).
//   gates [T, B, 4H]  activated gates of this direction, order i, f, g, o (training only).
//   init, last [2, L·D, B, H]  initial / final (h, c) of every layer and direction.
// Variable lengths: where t ≥ lengths[b] the step is padding: h and c are carried unchanged, so
// that the forward direction's last row holds each sequence's final state and the reverse
// direction starts each sequence from the initial state.

// Tile constants (UNITS, BATCH_TILE, K_TILE, K_SPLIT, THREADS): see activations.wgsl.

const STORE_GATES: u32 = 1u;
const REVERSE: u32 = 2u;
const LENGTHS: u32 = 4u;

struct Dims {
    batch: u32,
    hidden: u32,
    steps: u32,
    flags: u32,
    w_offset: u32,    // element offset of weight_hh [4H, H] in the parameter arena
    cs_slots: u32,
    row_stride: u32,  // D·H
    col_offset: u32,  // d·H
    h_state: u32,     // element offset of this layer and direction's h in init / last
    c_state: u32,     // … and of its c
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
// The step index: group 1 alone, at a dynamic offset per step; replaced by immediate data
// where the device has immediates (see kernels/lstm_step.rs).
@group(1) @binding(0) var<uniform> slot: StepSlot;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> xproj: array<f32>;
@group(0) @binding(3) var<storage, read> lengths: array<u32>;
@group(0) @binding(4) var<storage, read> init: array<f32>;
@group(0) @binding(5) var<storage, read_write> hs: array<f32>;
@group(0) @binding(6) var<storage, read_write> cs: array<f32>;
@group(0) @binding(7) var<storage, read_write> gates: array<f32>;
@group(0) @binding(8) var<storage, read_write> last: array<f32>;

// k-major, as vec4 so that each k of the inner loop is two vec4 reads for 16 multiply-adds:
// h_tile[kk · BATCH_TILE/4 + r/4][r % 4] = h_prev[row r][k0 + kk] and
// w_tile[kk · UNITS + u] = the four gates' W_hh[unit u][k0 + kk].
var<workgroup> h_tile: array<vec4<f32>, K_TILE * BATCH_TILE / 4u>;
var<workgroup> w_tile: array<vec4<f32>, K_TILE * UNITS>;

@compute @workgroup_size(THREADS, 1, 1)
fn lstm_step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = slot.t;
    let batch = dims.batch;
    let hidden = dims.hidden;
    let stride = dims.row_stride;
    let unit0 = wg.x * UNITS;
    let batch0 = wg.y * BATCH_TILE;
    let lane = li % K_SPLIT; // which k of each K_SPLIT this invocation adds up
    let u = (li / K_SPLIT) % UNITS;
    let bg = li / (K_SPLIT * UNITS); // batch group: rows bg*4 .. bg*4+3 of the tile
    let reverse = (dims.flags & REVERSE) != 0u;
    // The previous step in processing order, if any; else the initial state.
    var has_prev = t > 0u;
    var t_prev = t - 1u;
    if (reverse) {
        has_prev = t + 1u < dims.steps;
        t_prev = t + 1u;
    }
    let is_last = select(t + 1u == dims.steps, t == 0u, reverse);

    var acc: array<vec4<f32>, 4>; // acc[r] = (i, f, g, o) pre-activations for batch row bg*4+r

    for (var k0 = 0u; k0 < hidden; k0 += K_TILE) {
        // Whole vec4s of 4 rows at one k: invocations never write parts of one vector.
        for (var e = li; e < BATCH_TILE / 4u * K_TILE; e += THREADS) {
            let kk = e % K_TILE;
            var rows = vec4<f32>(0.0);
            for (var q = 0u; q < 4u; q++) {
                let r = (e / K_TILE) * 4u + q;
                let b = batch0 + r;
                var v = 0.0;
                if (b < batch && k0 + kk < hidden) {
                    if (has_prev) {
                        v = hs[(t_prev * batch + b) * stride + dims.col_offset + k0 + kk];
                    } else {
                        v = init[dims.h_state + b * hidden + k0 + kk];
                    }
                }
                rows[q] = v;
            }
            h_tile[kk * (BATCH_TILE / 4u) + e / K_TILE] = rows;
        }
        // Whole vec4s of the 4 gates of one unit at one k.
        for (var e = li; e < UNITS * K_TILE; e += THREADS) {
            let kk = e % K_TILE;
            let unit = unit0 + e / K_TILE;
            var w = vec4<f32>(0.0);
            if (unit < hidden && k0 + kk < hidden) {
                for (var gate = 0u; gate < 4u; gate++) {
                    w[gate] = params[dims.w_offset + (gate * hidden + unit) * hidden + k0 + kk];
                }
            }
            w_tile[kk * UNITS + e / K_TILE] = w;
        }
        workgroupBarrier();
        for (var kk = lane; kk < K_TILE; kk += K_SPLIT) {
            let w = w_tile[kk * UNITS + u];
            let h = h_tile[kk * (BATCH_TILE / 4u) + bg];
            acc[0] += h.x * w;
            acc[1] += h.y * w;
            acc[2] += h.z * w;
            acc[3] += h.w * w;
        }
        workgroupBarrier();
    }

    // The K_SPLIT lanes of each unit and row add their partial sums; lane 0 goes on. Rows past
    // the batch need no sum (at batch 1 that saves 3 of 4); the bound is the same for the whole
    // workgroup, as the barriers in sum_lanes require.
    let tile_rows = min(BATCH_TILE, batch - batch0);
    for (var r = 0u; r < 4u; r++) {
        if (r < tile_rows) {
            acc[r] = sum_lanes(li, acc[r]);
        }
    }
    let j = unit0 + u;
    if (j >= hidden || lane != 0u) {
        return;
    }
    for (var r = 0u; r < 4u; r++) {
        let b = batch0 + bg * 4u + r;
        if (b >= batch) {
            break;
        }
        let out = (t * batch + b) * stride + dims.col_offset + j;
        let c_out = ((t % dims.cs_slots) * batch + b) * stride + dims.col_offset + j;
        var c_prev: f32;
        var h_prev: f32;
        if (has_prev) {
            let prev = ((t_prev % dims.cs_slots) * batch + b) * stride + dims.col_offset + j;
            c_prev = cs[prev];
            h_prev = hs[(t_prev * batch + b) * stride + dims.col_offset + j];
        } else {
            c_prev = init[dims.c_state + b * hidden + j];
            h_prev = init[dims.h_state + b * hidden + j];
        }
        var c = c_prev;
        var h = h_prev;
        let in_sequence = (dims.flags & LENGTHS) == 0u || t < lengths[b];
        if (in_sequence) {
            let xrow = (t * batch + b) * 4u * hidden + j;
            let pre = acc[r] + vec4<f32>(
                xproj[xrow],
                xproj[xrow + hidden],
                xproj[xrow + 2u * hidden],
                xproj[xrow + 3u * hidden],
            );
            let ig = sigmoid(pre.x);
            let fg = sigmoid(pre.y);
            let gg = tanh_precise(pre.z);
            let og = sigmoid(pre.w);
            c = fg * c_prev + ig * gg;
            h = og * tanh_precise(c);
            if ((dims.flags & STORE_GATES) != 0u) {
                gates[xrow] = ig;
                gates[xrow + hidden] = fg;
                gates[xrow + 2u * hidden] = gg;
                gates[xrow + 3u * hidden] = og;
            }
        }
        cs[c_out] = c;
        hs[out] = h;
        if (is_last) {
            last[dims.h_state + b * hidden + j] = h;
            last[dims.c_state + b * hidden + j] = c;
        }
    }
}
