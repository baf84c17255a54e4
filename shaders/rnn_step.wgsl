// One vanilla-RNN timestep (PyTorch's nn.RNN, tanh) of one layer and direction, fused:
//
//     h_t = tanh(xproj[t] + h_prev · W_hhᵀ)      (xproj = x·W_ihᵀ + b_ih + b_hh, hoisted GEMM)
//
// The baseline the gradient-flow lab compares the LSTM with. Same bindings, layouts, tiling,
// directions and variable-length handling as lstm_step.wgsl, with one gate instead of four and
// no cell state (the cs and gates bindings are unused).

// Tile constants (UNITS, BATCH_TILE, K_TILE, K_SPLIT, THREADS): see activations.wgsl.

const REVERSE: u32 = 2u;
const LENGTHS: u32 = 4u;

struct Dims {
    batch: u32,
    hidden: u32,
    steps: u32,
    flags: u32,
    w_offset: u32,    // element offset of weight_hh [H, H] in the parameter arena
    cs_slots: u32,
    row_stride: u32,  // D·H
    col_offset: u32,  // d·H
    h_state: u32,     // element offset of this layer and direction's h in init / last
    c_state: u32,
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
@group(0) @binding(8) var<storage, read_write> last: array<f32>;

var<workgroup> h_tile: array<vec4<f32>, K_TILE * BATCH_TILE / 4u>; // [K_TILE][BATCH_TILE] as vec4 of 4 rows
var<workgroup> w_tile: array<f32, K_TILE * UNITS>; // [K_TILE][UNITS]

@compute @workgroup_size(THREADS, 1, 1)
fn rnn_step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = slot.t;
    let batch = dims.batch;
    let hidden = dims.hidden;
    let stride = dims.row_stride;
    let unit0 = wg.x * UNITS;
    let batch0 = wg.y * BATCH_TILE;
    let lane = li % K_SPLIT; // which k of each K_SPLIT this invocation adds up
    let u = (li / K_SPLIT) % UNITS;
    let bg = li / (K_SPLIT * UNITS);
    let reverse = (dims.flags & REVERSE) != 0u;
    var has_prev = t > 0u;
    var t_prev = t - 1u;
    if (reverse) {
        has_prev = t + 1u < dims.steps;
        t_prev = t + 1u;
    }
    let is_last = select(t + 1u == dims.steps, t == 0u, reverse);

    var acc = vec4<f32>(0.0); // batch rows bg*4 .. bg*4+3
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
        for (var e = li; e < K_TILE * UNITS; e += THREADS) {
            let row = e / K_TILE;
            let kk = e % K_TILE;
            let unit = unit0 + row;
            var v = 0.0;
            if (unit < hidden && k0 + kk < hidden) {
                v = params[dims.w_offset + unit * hidden + k0 + kk];
            }
            w_tile[kk * UNITS + row] = v;
        }
        workgroupBarrier();
        for (var kk = lane; kk < K_TILE; kk += K_SPLIT) {
            let w = w_tile[kk * UNITS + u];
            acc += w * h_tile[kk * (BATCH_TILE / 4u) + bg];
        }
        workgroupBarrier();
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
        var h: f32;
        if (has_prev) {
            h = hs[(t_prev * batch + b) * stride + dims.col_offset + j];
        } else {
            h = init[dims.h_state + b * hidden + j];
        }
        let in_sequence = (dims.flags & LENGTHS) == 0u || t < lengths[b];
        if (in_sequence) {
            h = tanh_precise(acc[r] + xproj[(t * batch + b) * hidden + j]);
        }
        hs[(t * batch + b) * stride + dims.col_offset + j] = h;
        if (is_last) {
            last[dims.h_state + b * hidden + j] = h;
        }
    }
}
