// One LSTM timestep backward for one layer and direction, fused (haste's split: pointwise
// backward per step, weight gradients as GEMMs after the loop). Steps run in the reverse of the
// forward processing order. For a slice of hidden units and batch rows:
//
//     dh    = dy[t] + dG_next · W_hh + dh_carry  (dG_next: the step that read h_t as h_prev)
//     dc    = dc_carry + dh ⊙ o ⊙ (1 - tanh²(c_t))
//     dG_t  = (dc ⊙ g ⊙ i(1-i),  dc ⊙ c_prev ⊙ f(1-f),  dc ⊙ i ⊙ (1-g²),  dh ⊙ tanh(c_t) ⊙ o(1-o))
//     dc_carry ← dc ⊙ f,  dh_carry ← 0
//
// Padding steps (t ≥ lengths[b]) copied h and c forward, so their gradient passes through:
// dh_carry += dG_next · W_hh, dc_carry unchanged, dG_t = 0. The carries start as dh_n, dc_n.
// After the loop one more dispatch in H0 mode writes dh_0 = dG_first · W_hh + dh_carry.
// The product dG · W_hh reads W_hh [4H, H] row-major along the hidden units, so loads are
// coalesced in PyTorch's layout. Tiling mirrors lstm_step.
//
// state [6, B, H]: 0 = dh carry, 1 = dc carry (dc_0 at the end), 2 = dh_0 (out), 3 = c_0 (in),
// 4, 5 = the carries of the explicit cell path and of the forget-gate product (probes).
//
// PROBE (the gradient-flow lab): also write, for every step k, ∂L/∂h_k, ∂L/∂c_k, the lecture's
// explicit cell path t₀ = dh_{T-1} ⊙ o_{T-1} ⊙ tanh'(c_{T-1}) ⊙ f_{T-1} ⊙ … ⊙ f_{k+1} and the
// forget-gate product f_{T-1} ⊙ … ⊙ f_{k+1} to probes [4, T, B, H] (forward direction).

// Tile constants (UNITS, BATCH_TILE, K_TILE, K_SPLIT, THREADS): see activations.wgsl.

const REVERSE: u32 = 2u;
const LENGTHS: u32 = 4u;
const PROBE: u32 = 8u;
const H0_MODE: u32 = 2u; // slot flag

struct Dims {
    batch: u32,
    hidden: u32,
    steps: u32,
    flags: u32,
    w_offset: u32,
    dy_offset: u32,   // element offset of this direction's first dy column
    row_stride: u32,  // D·H: row stride of dy and cs
    col_offset: u32,  // d·H: this direction's columns in cs
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
@group(0) @binding(2) var<storage, read> gates: array<f32>;
@group(0) @binding(3) var<storage, read> cs: array<f32>; // [T, B, D·H]
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read> lengths: array<u32>;
@group(0) @binding(6) var<storage, read_write> dgates: array<f32>;
@group(0) @binding(7) var<storage, read_write> state: array<f32>;
@group(0) @binding(8) var<storage, read_write> probes: array<f32>;

var<workgroup> dg_tile: array<vec4<f32>, K_TILE * BATCH_TILE / 4u>; // [K_TILE][BATCH_TILE] as vec4 of 4 rows
var<workgroup> w_tile: array<f32, K_TILE * UNITS>;  // [K_TILE][UNITS]

@compute @workgroup_size(THREADS, 1, 1)
fn lstm_step_back(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = slot.t;
    let h0_mode = (slot.mode & H0_MODE) != 0u;
    let reverse = (dims.flags & REVERSE) != 0u;
    let batch = dims.batch;
    let hidden = dims.hidden;
    let four_h = 4u * hidden;
    let unit0 = wg.x * UNITS;
    let batch0 = wg.y * BATCH_TILE;
    let lane = li % K_SPLIT; // which k of each K_SPLIT this invocation adds up
    let u = (li / K_SPLIT) % UNITS;
    let bg = li / (K_SPLIT * UNITS);
    let bh = batch * hidden;

    // The step whose dG multiplies W_hh: the one that read h_t (in H0 mode: the first step).
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
        let dg_base = t_next * batch * four_h;
        for (var k0 = 0u; k0 < four_h; k0 += K_TILE) {
            // Whole vec4s of 4 rows at one k: invocations never write parts of one vector.
            for (var e = li; e < BATCH_TILE / 4u * K_TILE; e += THREADS) {
                let kk = e % K_TILE;
                var rows = vec4<f32>(0.0);
                for (var q = 0u; q < 4u; q++) {
                    let r = (e / K_TILE) * 4u + q;
                    let b = batch0 + r;
                    var v = 0.0;
                    if (b < batch && k0 + kk < four_h) {
                        v = dgates[dg_base + b * four_h + k0 + kk];
                    }
                    rows[q] = v;
                }
                dg_tile[kk * (BATCH_TILE / 4u) + e / K_TILE] = rows;
            }
            for (var e = li; e < K_TILE * UNITS; e += THREADS) {
                let kk = e / UNITS;
                let unit = unit0 + e % UNITS;
                var v = 0.0;
                if (unit < hidden && k0 + kk < four_h) {
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
        let grow = (t * batch + b) * four_h + j;
        let in_sequence = (dims.flags & LENGTHS) == 0u || t < lengths[b];
        if (!in_sequence) {
            state[cell] += acc[r];
            dgates[grow] = 0.0;
            dgates[grow + hidden] = 0.0;
            dgates[grow + 2u * hidden] = 0.0;
            dgates[grow + 3u * hidden] = 0.0;
            continue;
        }
        let row = (t * batch + b) * dims.row_stride;
        let dh = dy[dims.dy_offset + row + j] + acc[r] + state[cell];
        state[cell] = 0.0;
        let ig = gates[grow];
        let fg = gates[grow + hidden];
        let gg = gates[grow + 2u * hidden];
        let og = gates[grow + 3u * hidden];
        let c = cs[row + dims.col_offset + j];
        var c_prev: f32;
        let first = select(t == 0u, t + 1u == dims.steps, reverse);
        if (first) {
            c_prev = state[3u * bh + cell];
        } else {
            let t_prev = select(t - 1u, t + 1u, reverse);
            c_prev = cs[(t_prev * batch + b) * dims.row_stride + dims.col_offset + j];
        }
        let tc = tanh_precise(c);
        let dc = state[bh + cell] + dh * og * (1.0 - tc * tc);
        dgates[grow] = dc * gg * ig * (1.0 - ig);
        dgates[grow + hidden] = dc * c_prev * fg * (1.0 - fg);
        dgates[grow + 2u * hidden] = dc * ig * (1.0 - gg * gg);
        dgates[grow + 3u * hidden] = dh * tc * og * (1.0 - og);
        state[bh + cell] = dc * fg;
        if ((dims.flags & PROBE) != 0u) {
            let tbh = dims.steps * bh;
            var path = state[4u * bh + cell];
            var fprod = state[5u * bh + cell];
            var final_step = dims.steps;
            if ((dims.flags & LENGTHS) != 0u) {
                final_step = lengths[b];
            }
            if (t + 1u == final_step) {
                path = dh * og * (1.0 - tc * tc);
                fprod = 1.0;
            }
            probes[t * bh + cell] = dh;
            probes[tbh + t * bh + cell] = dc;
            probes[2u * tbh + t * bh + cell] = path;
            probes[3u * tbh + t * bh + cell] = fprod;
            state[4u * bh + cell] = path * fg;
            state[5u * bh + cell] = fprod * fg;
        }
    }
}
