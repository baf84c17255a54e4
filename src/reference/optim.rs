//! PyTorch's optimizer updates in f64, one parameter vector at a time.

/// `torch.optim.SGD` step: returns nothing, updates `p` and `buf` (the momentum buffer).
#[allow(clippy::too_many_arguments)]
pub fn sgd_step(
    p: &mut [f64],
    g: &[f64],
    buf: &mut [f64],
    first: bool,
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
) {
    for i in 0..p.len() {
        let mut d = g[i] + weight_decay * p[i];
        if momentum != 0.0 {
            buf[i] = if first {
                d
            } else {
                momentum * buf[i] + (1.0 - dampening) * d
            };
            d = if nesterov {
                d + momentum * buf[i]
            } else {
                buf[i]
            };
        }
        p[i] -= lr * d;
    }
}

/// `torch.optim.Adam` (`decoupled = false`) or `AdamW` (`decoupled = true`) step number `t` ≥ 1.
#[allow(clippy::too_many_arguments)]
pub fn adam_step(
    p: &mut [f64],
    g: &[f64],
    m: &mut [f64],
    v: &mut [f64],
    t: u64,
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
) {
    let bc1 = 1.0 - betas.0.powi(t as i32);
    let bc2 = 1.0 - betas.1.powi(t as i32);
    for i in 0..p.len() {
        let mut grad = g[i];
        if decoupled {
            p[i] *= 1.0 - lr * weight_decay;
        } else {
            grad += weight_decay * p[i];
        }
        m[i] = betas.0 * m[i] + (1.0 - betas.0) * grad;
        v[i] = betas.1 * v[i] + (1.0 - betas.1) * grad * grad;
        p[i] -= lr / bc1 * m[i] / (v[i].sqrt() / bc2.sqrt() + eps);
    }
}
