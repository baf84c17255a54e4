// Global L2 norm of one array, the clip coefficient, and the scale pass.
// Used by clip_grad_norm on the gradient arena (PyTorch's clip_grad_norm_, norm_type 2):
//     total = ‖g‖₂,  coef = min(1, max_norm / (total + 1e-6)),  g ← g · coef
//
// Deterministic: a fixed partition (invocation i of workgroup w takes elements w·256 + i, then
// strides by the whole grid) and fixed-order tree reductions in workgroup memory; no atomics.
// The sum of squares is kept as a scaled pair (scale, ssq) with value scale²·ssq, as in LAPACK's
// nrm2, so that finite gradients near f32's range do not overflow to an infinite norm.
// Non-finite elements are counted separately from their bits (WGSL may assume that NaN and Inf
// never occur, so arithmetic tests on them are not reliable).

// THREADS and the flag ERROR_IF_NONFINITE come from the host (kernels/reduce.rs), which also
// expands the loops marked @unroll.

struct Params {
    len: u32,
    partials: u32, // number of workgroups of the first pass
    flags: u32,
    max_norm: f32,
}

// Per workgroup: scale, ssq, NaN seen, Inf seen.
struct Partial {
    scale: f32,
    ssq: f32,
    nans: u32,
    infs: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> data: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<Partial>;
// result[0] = total norm before clipping, result[1] = coefficient applied, result[2] = 1 if the
// norm was non-finite and ERROR_IF_NONFINITE left the gradients untouched.
@group(0) @binding(3) var<storage, read_write> result: array<f32>;

var<workgroup> scratch: array<Partial, THREADS>;

fn combine(x: Partial, y: Partial) -> Partial {
    var out: Partial;
    out.nans = x.nans | y.nans;
    out.infs = x.infs | y.infs;
    let s = max(x.scale, y.scale);
    out.scale = s;
    if (s == 0.0) {
        out.ssq = 0.0;
        return out;
    }
    let rx = x.scale / s;
    let ry = y.scale / s;
    out.ssq = x.ssq * rx * rx + y.ssq * ry * ry;
    return out;
}

fn reduce_scratch(li: u32) {
    // @unroll
    for (var level = 0u; level < THREAD_LEVELS; level++) {
        let stride = THREADS >> (level + 1u);
        if (li < stride) {
            scratch[li] = combine(scratch[li], scratch[li + stride]);
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(THREADS, 1, 1)
fn sum_squares(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    var acc = Partial(0.0, 0.0, 0u, 0u);
    for (var i = wg.x * THREADS + li; i < p.len; i += p.partials * THREADS) {
        let x = data[i];
        let bits = bitcast<u32>(x) & 0x7fffffffu;
        if (bits > 0x7f800000u) {
            acc.nans = 1u;
        } else if (bits == 0x7f800000u) {
            acc.infs = 1u;
        } else if (abs(x) > 0.0) { // not `bits != 0`: a denormal flushed to zero would give 0/0
            let ax = abs(x);
            if (ax > acc.scale) {
                let r = acc.scale / ax;
                acc.ssq = 1.0 + acc.ssq * r * r;
                acc.scale = ax;
            } else {
                let r = ax / acc.scale;
                acc.ssq += r * r;
            }
        }
    }
    scratch[li] = acc;
    workgroupBarrier();
    reduce_scratch(li);
    if (li == 0u) {
        partials[wg.x] = scratch[0];
    }
}

@compute @workgroup_size(THREADS, 1, 1)
fn finish_norm(@builtin(local_invocation_index) li: u32) {
    var acc = Partial(0.0, 0.0, 0u, 0u);
    for (var i = li; i < p.partials; i += THREADS) {
        acc = combine(acc, partials[i]);
    }
    scratch[li] = acc;
    workgroupBarrier();
    reduce_scratch(li);
    if (li != 0u) {
        return;
    }
    let total = scratch[0];
    // From variables, not constants: WGSL forbids NaN and infinity in constant expressions, and
    // Tint (Chromium's compiler) rejects them where naga lets them through.
    var nan_bits = 0x7fc00000u;
    var inf_bits = 0x7f800000u;
    let nan = bitcast<f32>(nan_bits);
    let inf = bitcast<f32>(inf_bits);
    var norm = total.scale * sqrt(total.ssq);
    var coef = 0.0;
    if (total.nans != 0u) {
        norm = nan;
        coef = nan;
    } else if (total.infs != 0u) {
        norm = inf;
        coef = 0.0;
    } else {
        coef = min(1.0, p.max_norm / (norm + 1e-6));
    }
    var refused = 0.0;
    if ((total.nans | total.infs) != 0u && (p.flags & ERROR_IF_NONFINITE) != 0u) {
        coef = 1.0;
        refused = 1.0;
    }
    result[0] = norm;
    result[1] = coef;
    result[2] = refused;
}

@compute @workgroup_size(THREADS, 1, 1)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * THREADS;
    if (i >= p.len) {
        return;
    }
    let coef = result[1];
    let cbits = bitcast<u32>(coef) & 0x7fffffffu;
    if (cbits == 0x3f800000u) {
        return; // coef = 1: leave the value exactly as it is
    }
    let x = data[i];
    let xbits = bitcast<u32>(x) & 0x7fffffffu;
    if (cbits > 0x7f800000u || xbits > 0x7f800000u || (xbits == 0x7f800000u && cbits == 0u)) {
        // NaN · c, x · NaN and ±Inf · 0 are NaN, as in PyTorch (from a variable, as above).
        var nan_bits = 0x7fc00000u;
        data[i] = bitcast<f32>(nan_bits);
        return;
    }
    data[i] = x * coef;
}

// Per-row L2 norms and means of `data` viewed as [p.partials rows, p.len columns], one
// workgroup per row: result[2r] = ‖row r‖₂ (scaled, so 1e-30 gradients do not underflow),
// result[2r + 1] = mean of row r. The gradient-flow probes use it: one slot per timestep.
@compute @workgroup_size(THREADS, 1, 1)
fn row_norms(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = wg.x + wg.y * 65535u;
    if (row >= p.partials) {
        return;
    }
    var acc = Partial(0.0, 0.0, 0u, 0u);
    var sum = 0.0;
    for (var i = li; i < p.len; i += THREADS) {
        let x = data[row * p.len + i];
        sum += x;
        let ax = abs(x);
        if (ax > acc.scale) {
            let r = acc.scale / ax;
            acc.ssq = 1.0 + acc.ssq * r * r;
            acc.scale = ax;
        } else if (ax != 0.0) {
            let r = ax / acc.scale;
            acc.ssq += r * r;
        }
    }
    scratch[li] = acc;
    workgroupBarrier();
    reduce_scratch(li);
    // Reuse the partial slots of this row's workgroup for the sums (tree order, deterministic).
    let norm = scratch[0].scale * sqrt(scratch[0].ssq);
    workgroupBarrier();
    scratch[li].scale = sum;
    workgroupBarrier();
    // @unroll
    for (var level = 0u; level < THREAD_LEVELS; level++) {
        let stride = THREADS >> (level + 1u);
        if (li < stride) {
            scratch[li].scale += scratch[li + stride].scale;
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        result[2u * row] = norm;
        result[2u * row + 1u] = scratch[0].scale / f32(p.len);
    }
}
