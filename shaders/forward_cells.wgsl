// What the forward templates (step_forward.wgsl, sequence_forward.wgsl) give the cells'
// pointwise parts (cells/*_forward.wgsl): the dims, the bindings and the helpers that read the
// hoisted input projection, the previous h, and write h, the final state and what backward
// needs. The host declares `dims` (a uniform, or per phase a private copy).
//
// Layouts: element (t, b, k) of the h source is hs[src_base + (t·B + b)·src_stride + k]; h_t
// goes to hs[dst_base + (t·B + b)·dst_stride + j]. The forward direction reads the previous step
// from t-1, the reverse one from t+1; the step that has none reads the initial state.
// state holds the initial and final states of every layer and direction.
// Variable lengths: where t ≥ lengths[b] the step is padding: the cell carries its state, so
// that the forward direction's last row holds each sequence's final state and the reverse
// direction starts each sequence from the initial state.

// The product's W: row g·units + j of k_size values, in the parameter arena.
struct Dims {
    p: Product,
    h_init: u32,      // in state: this layer and direction's initial h …
    h_last: u32,      // … and final h, [B, units] (the source's initial h is [B, k_size])
    c_init: u32,      // the same for c (LSTM)
    c_last: u32,
    cs_base: u32,     // LSTM cell states: (t, b, j) at cs_base + ((t % cs_slots)·B + b)·cs_stride + j
    cs_stride: u32,
    cs_slots: u32,
    kept_stride: u32, // what the cell keeps for backward: (t, b, s, j) at (t·B + b)·kept_stride + s·units + j
    bias_hh: u32,     // GRU: element offset of b_hh (with BIAS)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> xproj: array<f32>; // [T, B, gates·units]: x·W_ihᵀ + biases
@group(0) @binding(3) var<storage, read> lengths: array<u32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> hs: array<f32>;
@group(0) @binding(6) var<storage, read_write> cs: array<f32>;
@group(0) @binding(7) var<storage, read_write> gates: array<f32>;

// One unit of one batch row at one step, as the cell's pointwise part sees it.
struct Unit {
    t: u32,
    b: u32,
    j: u32,
    has_prev: bool,     // false at the first step in processing order
    t_prev: u32,
    is_last: bool,      // the last step in processing order: write the final state
    in_sequence: bool,  // false on padding steps
}

fn load_src(t_src: u32, has_src: bool, b: u32, k: u32) -> f32 {
    if (b >= dims.p.batch || k >= dims.p.k_size) {
        return 0.0;
    }
    if (has_src) {
        return hs[dims.p.src_base + (t_src * dims.p.batch + b) * dims.p.src_stride + k];
    }
    return state[dims.h_init + b * dims.p.k_size + k];
}

// The hoisted input projection of gate g.
fn xproj_at(u: Unit, g: u32) -> f32 {
    return xproj[(u.t * dims.p.batch + u.b) * dims.p.gates * dims.p.units + g * dims.p.units + u.j];
}

// The previous output of this unit (h_{t-1}), or the initial one.
fn prev_h(u: Unit) -> f32 {
    if (u.has_prev) {
        return hs[dims.p.dst_base + (u.t_prev * dims.p.batch + u.b) * dims.p.dst_stride + u.j];
    }
    return state[dims.h_init + u.b * dims.p.units + u.j];
}

// What a padding step outputs: the carried h; zero for a cell whose output is projected (the
// projection carries the projected h itself).
fn carried_h(u: Unit) -> f32 {
    if ((dims.p.flags & PROJECTED) != 0u) {
        return 0.0;
    }
    return prev_h(u);
}

fn store_h(u: Unit, h: f32) {
    hs[dims.p.dst_base + (u.t * dims.p.batch + u.b) * dims.p.dst_stride + u.j] = h;
    if (u.is_last && (dims.p.flags & PROJECTED) == 0u) {
        state[dims.h_last + u.b * dims.p.units + u.j] = h;
    }
}

// Keeps value s of this unit for the backward pass (training only).
fn keep(u: Unit, s: u32, v: f32) {
    if ((dims.p.flags & STORE_GATES) != 0u) {
        gates[(u.t * dims.p.batch + u.b) * dims.kept_stride + s * dims.p.units + u.j] = v;
    }
}

