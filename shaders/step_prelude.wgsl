// Prelude of the recurrent templates (step and sequence): the shared dims, the per-step slot
// and the activation helpers. The host prepends the constants (tile sizes, flags) and expands
// every loop marked `@unroll` (kernels/step/generate.rs).

// What the dims of both templates open with (kernels/step/mod.rs, `Product`): the sizes, the
// flags and the operands of the recurrent product. Source element (t, b, k) at
// src_base + (t·B + b)·src_stride + k; the step's output (t, b, j) at dst_base + (t·B + b)·
// dst_stride + j.
struct Product {
    batch: u32,
    steps: u32,
    flags: u32,
    units: u32,      // output units of this dispatch
    k_size: u32,     // length of the recurrent product
    w_offset: u32,
    src_base: u32,
    src_stride: u32,
    dst_base: u32,
    dst_stride: u32,
    gates: u32,      // weight rows per unit: the cell's gates, 1 for the projection
    _pad0: u32,
}

// The timestep (and, backwards, a mode flag) of each dispatch: a uniform read at a dynamic
// offset, or immediate data where the device has immediates. A struct, as DX12 requires of
// immediates. The declaration of `slot` is generated.
struct StepSlot {
    t: u32,
    mode: u32,
    _pad0: u32,
    _pad1: u32,
}

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
