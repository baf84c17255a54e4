// Activation helpers shared by the recurrent kernels (prepended to them by the host).
//
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

fn tanh_safe(x: f32) -> f32 {
    // tanh(±15) rounds to ±1 in f32; clamping keeps exp-based tanh implementations finite.
    let y = tanh(clamp(x, -15.0, 15.0));
    return select(y, x, is_nan(x));
}
