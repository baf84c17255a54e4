// What the backward templates (step_backward.wgsl, sequence_backward.wgsl) give the cells'
// pointwise parts (cells/*_backward.wgsl): the dims, the bindings and the helpers that read dy,
// what the forward pass saved and kept, and write the gate gradients, the carries and the
// probes. The host declares `dims` (a uniform, or per phase a private copy).
//
// state [slots, B, ≤ H] per layer and direction (slot s of unit j, row b at s·slot_stride +
// b·units + j): 0 = dh carry (dh_n in), 1 = dc carry (dc_n in, dc_0 out), 2 = dh_0 (out),
// 3 = the initial state the cell reads (c_0 for the LSTM, h_0 for the GRU), 4, 5 = the carries
// of the probes.
//
// PROBE (the gradient-flow lab): the cell also writes per-step measurements to probes
// [4, T, B, units] (row p of (t, b, j) at p·T·B·units + (t·B + b)·units + j).

// The product's W: element (k, j) at w_offset + k·units + j; its source and destination are
// regions of dgates (this step's gradients (t, b, s, j) at dst_base + (t·B + b)·dst_stride +
// s·units + j).
struct Dims {
    p: Product,
    dst2_base: u32,   // GRU: the input-side gate gradients, same layout
    dy_base: u32,     // dy (t, b, j) at dy_base + (t·B + b)·dy_stride + j
    dy_stride: u32,
    saved_base: u32,  // the forward pass's c (LSTM) or h (GRU, RNN): (t, b, j) at
    saved_stride: u32, // saved_base + (t·B + b)·saved_stride + j
    kept_stride: u32, // what the forward pass kept: (t, b, s, j) at (t·B + b)·kept_stride + s·units + j
    slot_stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
    _pad4: u32,
}

@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> gates: array<f32>;
@group(0) @binding(3) var<storage, read> saved: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read> lengths: array<u32>;
@group(0) @binding(6) var<storage, read_write> dgates: array<f32>;
@group(0) @binding(7) var<storage, read_write> state: array<f32>;
@group(0) @binding(8) var<storage, read_write> probes: array<f32>;

// One unit of one batch row at one step, as the cell's pointwise part sees it.
struct Unit {
    t: u32,
    b: u32,
    j: u32,
    first: bool,        // the first step in forward processing order (its previous state is the initial one)
    t_prev: u32,
    in_sequence: bool,  // false on padding steps
}

fn load_src(t_src: u32, has_src: bool, b: u32, k: u32) -> f32 {
    if (b >= dims.p.batch || k >= dims.p.k_size) {
        return 0.0;
    }
    return dgates[dims.p.src_base + (t_src * dims.p.batch + b) * dims.p.src_stride + k];
}

fn load_w(k: u32, unit: u32) -> f32 {
    if (unit >= dims.p.units || k >= dims.p.k_size) {
        return 0.0;
    }
    return params[dims.p.w_offset + k * dims.p.units + unit];
}

// Index of this unit in state slot s.
fn slot_of(s: u32, u: Unit) -> u32 {
    return s * dims.slot_stride + u.b * dims.p.units + u.j;
}

fn dy_at(u: Unit) -> f32 {
    return dy[dims.dy_base + (u.t * dims.p.batch + u.b) * dims.dy_stride + u.j];
}

// The forward pass's saved value of this unit at step t, and at the previous step (the initial
// state, slot 3, at the first).
fn saved_at(u: Unit) -> f32 {
    return saved[dims.saved_base + (u.t * dims.p.batch + u.b) * dims.saved_stride + u.j];
}

fn saved_prev(u: Unit) -> f32 {
    if (u.first) {
        return state[slot_of(3u, u)];
    }
    return saved[dims.saved_base + (u.t_prev * dims.p.batch + u.b) * dims.saved_stride + u.j];
}

// Value s the forward pass kept.
fn kept(u: Unit, s: u32) -> f32 {
    return gates[(u.t * dims.p.batch + u.b) * dims.kept_stride + s * dims.p.units + u.j];
}

// The whole gradient reaching h_t: dy_t + rec + the carry (then cleared). With SOURCE_CURRENT
// the dispatch before this one has already added dy and the carry into the source.
fn step_dh(u: Unit, rec: f32) -> f32 {
    if ((dims.p.flags & SOURCE_CURRENT) != 0u) {
        return rec;
    }
    let dh = dy_at(u) + rec + state[slot_of(0u, u)];
    state[slot_of(0u, u)] = 0.0;
    return dh;
}

// A padding step copied h forward: its gradient passes through to the step before.
fn pass_through(u: Unit, rec: f32) {
    if ((dims.p.flags & SOURCE_CURRENT) == 0u) {
        state[slot_of(0u, u)] += rec;
    }
}

// Gradient s of this step (the recurrent side: what the next dispatch multiplies by W_hh).
fn store_grad(u: Unit, s: u32, v: f32) {
    dgates[dims.p.dst_base + (u.t * dims.p.batch + u.b) * dims.p.dst_stride + s * dims.p.units + u.j] = v;
}

// Gradient s of the input side, where it differs from the recurrent side (GRU).
fn store_input_grad(u: Unit, s: u32, v: f32) {
    dgates[dims.dst2_base + (u.t * dims.p.batch + u.b) * dims.p.dst_stride + s * dims.p.units + u.j] = v;
}

fn probe(u: Unit, row: u32, v: f32) {
    if ((dims.p.flags & PROBE) != 0u) {
        let per_row = dims.p.steps * dims.p.batch * dims.p.units;
        probes[row * per_row + (u.t * dims.p.batch + u.b) * dims.p.units + u.j] = v;
    }
}

// A padding step (t ≥ its sequence's length) copied h forward: its gradient passes through to
// the step before, and its gate gradients are zero.
fn skip_padding(u: Unit, rec: f32) {
    pass_through(u, rec);
    // @unroll
    for (var s = 0u; s < 4u; s++) {
        if (s < dims.p.gates) {
            store_grad(u, s, 0.0);
            if (dims.dst2_base != 0u) {
                store_input_grad(u, s, 0.0);
            }
        }
    }
}

// The probes of a cell whose state persists through a keep gate (the LSTM's f, the GRU's z):
// ∂L/∂h_k, ∂L/∂c_k, the explicit path (`start` at the final step, times the keep gate at each
// step back) and the product of the keep gates.
fn probe_paths(u: Unit, dh: f32, dc: f32, start: f32, keep: f32) {
    if ((dims.p.flags & PROBE) == 0u) {
        return;
    }
    var path = state[slot_of(4u, u)];
    var product = state[slot_of(5u, u)];
    if (u.t + 1u == final_step(u)) {
        path = start;
        product = 1.0;
    }
    probe(u, 0u, dh);
    probe(u, 1u, dc);
    probe(u, 2u, path);
    probe(u, 3u, product);
    state[slot_of(4u, u)] = path * keep;
    state[slot_of(5u, u)] = product * keep;
}

// The final step of this unit's sequence in processing order (for the probes).
fn final_step(u: Unit) -> u32 {
    if ((dims.p.flags & LENGTHS) != 0u) {
        return lengths[u.b];
    }
    return dims.p.steps;
}

