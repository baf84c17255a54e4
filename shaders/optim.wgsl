// One optimizer step over the whole parameter arena: one invocation per parameter, one dispatch
// whatever the model's size. PyTorch's formulas (torch.optim.SGD, Adam, AdamW; no amsgrad):
//
//   SGD:   d = g + wd·p;  buf = d (first step) or μ·buf + (1-τ)·d;  d = d + μ·buf (Nesterov)
//          or buf;  p ← p - lr·d
//   Adam:  g' = g + wd·p;  m ← m + (1-β₁)(g' - m);  v ← β₂·v + (1-β₂)·g'²
//          p ← p - (lr / (1-β₁ᵗ)) · m / (√v / √(1-β₂ᵗ) + ε)
//   AdamW: p ← p·(1 - lr·wd), then Adam with wd = 0.
//
// With SKIP_NONFINITE, the step is skipped (parameters and state untouched) when the clipping
// pass flagged a non-finite gradient norm: no host round trip needed to decide.

// The kinds (SGD, ADAM, ADAMW), the flags (NESTEROV, SKIP_NONFINITE, FIRST_STEP) and THREADS come
// from the host (kernels/optim.rs).

struct Params {
    len: u32,
    kind: u32,
    flags: u32,
    _pad0: u32,
    lr: f32,
    momentum: f32,
    dampening: f32,
    weight_decay: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    bias_correction1: f32,      // 1 - β₁ᵗ
    bias_correction2_sqrt: f32, // √(1 - β₂ᵗ)
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> state1: array<f32>; // momentum buffer / m
@group(0) @binding(4) var<storage, read_write> state2: array<f32>; // v
@group(0) @binding(5) var<storage, read> clip: array<f32>;         // [norm, coef, non-finite]

@compute @workgroup_size(THREADS, 1, 1)
fn optimizer_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * THREADS;
    if (i >= p.len) {
        return;
    }
    if ((p.flags & SKIP_NONFINITE) != 0u && clip[2] != 0.0) {
        return;
    }
    var w = param[i];
    var g = grad[i];
    if (p.kind == SGD) {
        var d = g + p.weight_decay * w;
        if (p.momentum != 0.0) {
            var buf = d;
            if ((p.flags & FIRST_STEP) == 0u) {
                buf = p.momentum * state1[i] + (1.0 - p.dampening) * d;
            }
            state1[i] = buf;
            if ((p.flags & NESTEROV) != 0u) {
                d = d + p.momentum * buf;
            } else {
                d = buf;
            }
        }
        param[i] = w - p.lr * d;
        return;
    }
    if (p.kind == ADAMW) {
        w = w * (1.0 - p.lr * p.weight_decay);
    } else {
        g = g + p.weight_decay * w;
    }
    let m = state1[i] + (1.0 - p.beta1) * (g - state1[i]);
    let v = p.beta2 * state2[i] + (1.0 - p.beta2) * g * g;
    state1[i] = m;
    state2[i] = v;
    let denom = sqrt(v) / p.bias_correction2_sqrt + p.eps;
    param[i] = w - (p.lr / p.bias_correction1) * m / denom;
}
