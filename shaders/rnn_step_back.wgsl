// One vanilla-RNN timestep backward for one layer and direction, fused; the mirror of
// lstm_step_back.wgsl with one gate:
//
//     dh   = dy[t] + dG_next · W_hh + dh_carry
//     dG_t = dh ⊙ (1 - h_t²),   dh_carry ← 0
//
// Padding steps pass dh through (dh_carry += dG_next · W_hh, dG_t = 0). The binding that holds
// the LSTM's cell states holds the RNN's hidden states hs [T, B, D·H]. H0 mode and the state
// slots are as in lstm_step_back.wgsl; with PROBE, ∂L/∂h_k goes to probes row 0.

// Tile constants (UNITS, BATCH_TILE, K_TILE, K_SPLIT, THREADS): see activations.wgsl.

const REVERSE: u32 = 2u;
const LENGTHS: u32 = 4u;
const PROBE: u32 = 8u;
const H0_MODE: u32 = 2u;

struct Dims {
    batch: u32,
    hidden: u32,
    steps: u32,
    flags: u32,
    w_offset: u32,
    dy_offset: u32,
    row_stride: u32,
    col_offset: u32,
    _pad3: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
// The step index: group 1 alone, at a dynamic offset per step; replaced by immediate data
// where the device has immediates (see kernels/lstm_step.rs).
@group(1) @binding(0) var<uniform> slot: StepSlot;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> hs: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read> lengths: array<u32>;
@group(0) @binding(6) var<storage, read_write> dgates: array<f32>;
@group(0) @binding(7) var<storage, read_write> state: array<f32>;
@group(0) @binding(8) var<storage, read_write> probes: array<f32>;

var<workgroup> dg_tile: array<vec4<f32>, K_TILE * BATCH_TILE / 4u>; // [K_TILE][BATCH_TILE] as vec4 of 4 rows
var<workgroup> w_tile: array<f32, K_TILE * UNITS>;  // [K_TILE][UNITS]

@compute @workgroup_size(THREADS, 1, 1)
fn rnn_step_back(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = slot.t;
    let h0_mode = (slot.mode & H0_MODE) != 0u;
    let reverse = (dims.flags & REVERSE) != 0u;
    let batch = dims.batch;
    let hidden = dims.hidden;
    let unit0 = wg.x * UNITS;
    let batch0 = wg.y * BATCH_TILE;
    let lane = li % K_SPLIT; // which k of each K_SPLIT this invocation adds up
    let u = (li / K_SPLIT) % UNITS;
    let bg = li / (K_SPLIT * UNITS);
    let bh = batch * hidden;

    var has_next: bool;
    var t_next: u32;
    if (h0_mode) {
        has_next = true;
        t_next = select(0u, dims.steps - 1u, reverse);
    } else if (reverse) {
        has_next = t > 0u;
        t_next = t - 1u;
    } else {
        has_next = t + 1u < dims.steps;
        t_next = t + 1u;
    }

    var acc = vec4<f32>(0.0);
    if (has_next) {
        let dg_base = t_next * bh;
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
                        v = dgates[dg_base + b * hidden + k0 + kk];
                    }
                    rows[q] = v;
                }
                dg_tile[kk * (BATCH_TILE / 4u) + e / K_TILE] = rows;
            }
            for (var e = li; e < K_TILE * UNITS; e += THREADS) {
                let kk = e / UNITS;
                let unit = unit0 + e % UNITS;
                var v = 0.0;
                if (unit < hidden && k0 + kk < hidden) {
                    v = params[dims.w_offset + (k0 + kk) * hidden + unit];
                }
                w_tile[e] = v;
            }
            workgroupBarrier();
            for (var kk = lane; kk < K_TILE; kk += K_SPLIT) {
                let w = w_tile[kk * UNITS + u];
                acc += w * dg_tile[kk * (BATCH_TILE / 4u) + bg];
            }
            workgroupBarrier();
        }
    }

    // The K_SPLIT lanes of each unit add their partial sums; lane 0 goes on.
    acc = sum_lanes(li, acc);
    let j = unit0 + u;
    if (j >= hidden || lane != 0u) {
        return;
    }
    for (var r = 0u; r < 4u; r++) {
        let b = batch0 + bg * 4u + r;
        if (b >= batch) {
            break;
        }
        let cell = b * hidden + j;
        if (h0_mode) {
            state[2u * bh + cell] = acc[r] + state[cell];
            continue;
        }
        let grow = (t * batch + b) * hidden + j;
        let in_sequence = (dims.flags & LENGTHS) == 0u || t < lengths[b];
        if (!in_sequence) {
            state[cell] += acc[r];
            dgates[grow] = 0.0;
            continue;
        }
        let row = (t * batch + b) * dims.row_stride;
        let dh = dy[dims.dy_offset + row + j] + acc[r] + state[cell];
        state[cell] = 0.0;
        let h = hs[row + dims.col_offset + j];
        dgates[grow] = dh * (1.0 - h * h);
        if ((dims.flags & PROBE) != 0u) {
            probes[t * bh + cell] = dh;
        }
    }
}
