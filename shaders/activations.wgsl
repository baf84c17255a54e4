// Prelude of the recurrent step kernels (prepended to them by the host): their tile constants,
// activation helpers, the lane sums of the split tilings and the per-step slot.

// A workgroup owns UNITS hidden units × BATCH_TILE batch rows, walks K in slices of K_TILE, and
// splits every dot product over K_SPLIT invocations. These are the wide tiling's values; the
// host replaces the first four lines for the other tilings (kernels/mod.rs, `Tiling`).
const UNITS: u32 = 16u;
const BATCH_TILE: u32 = 16u;
const K_TILE: u32 = 16u;
const K_SPLIT: u32 = 1u;
// Each invocation keeps 4 batch rows of one unit, for every K_SPLIT-th k of each K_TILE slice.
const THREADS: u32 = UNITS * (BATCH_TILE / 4u) * K_SPLIT;
const_assert BATCH_TILE % 4u == 0u;
const_assert K_TILE % K_SPLIT == 0u;
//
// The timestep (and, backwards, a mode flag) of each dispatch: a uniform read at a dynamic offset,
// or immediate data where the device has immediates. A struct, as DX12 requires of immediates.
struct StepSlot {
    t: u32,
    mode: u32,
    _pad0: u32,
    _pad1: u32,
}

// The sum of v over the K_SPLIT lanes that share a unit and batch rows (the lanes are the
// fastest part of the invocation index), valid in lane 0. The split tilings (GPUs) spread each
// dot product over K_SPLIT invocations, to shorten a step's serial chain and fill the device;
// the including kernel defines K_SPLIT and THREADS. With K_SPLIT = 1 it returns v and the
// compiler drops lane_sums. Contains barriers: call it in uniform control flow.
var<workgroup> lane_sums: array<vec4<f32>, THREADS>;

fn sum_lanes(li: u32, v: vec4<f32>) -> vec4<f32> {
    if (K_SPLIT == 1u) {
        return v;
    }
    lane_sums[li] = v;
    workgroupBarrier();
    for (var half = K_SPLIT / 2u; half > 0u; half /= 2u) {
        if (li % K_SPLIT < half) {
            lane_sums[li] += lane_sums[li + half];
        }
        workgroupBarrier();
    }
    return lane_sums[li];
}
const_assert 0u == (K_SPLIT & (K_SPLIT - 1u)); // a power of two, for the halving sum

// WGSL lets an implementation assume that no NaN or infinity occurs, so builtins such as clamp,
// min or tanh are not relied on for them: NaN is detected from the bits and passed through,
// which is what PyTorch does, and arguments are clamped so that exp never overflows.

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn sigmoid(x: f32) -> f32 {
    // exp(88) < f32::MAX, and 1 / (1 + exp(88)) is already 0 in f32.
    let y = 1.0 / (1.0 + exp(-clamp(x, -88.0, 88.0)));
    return select(y, x, is_nan(x));
}

// tanh as a rational function (the float tanh of Eigen and XLA): relative error below 3e-7 over
// all of f32. The builtin may be computed from exp and lose relative accuracy near 0 (lavapipe's
// tanh(1e-3) is off by 1e-4 relative), which LSTMs with small activations amplify.
fn tanh_precise(x: f32) -> f32 {
    let xc = clamp(x, -7.90531110763549805, 7.90531110763549805); // tanh rounds to ±1 beyond
    let x2 = xc * xc;
    var p = -2.76076847742355e-16;
    p = fma(p, x2, 2.00018790482477e-13);
    p = fma(p, x2, -8.60467152213735e-11);
    p = fma(p, x2, 5.12229709037114e-08);
    p = fma(p, x2, 1.48572235717979e-05);
    p = fma(p, x2, 6.37261928875436e-04);
    p = fma(p, x2, 4.89352455891786e-03);
    var q = 1.19825839466702e-06;
    q = fma(q, x2, 1.18534705686654e-04);
    q = fma(q, x2, 2.26843463243900e-03);
    q = fma(q, x2, 4.89352518554385e-03);
    return select(xc * p / q, x, is_nan(x));
}
