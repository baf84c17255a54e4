//! `torch.nn.utils.clip_grad_norm_` with norm_type 2, in f64.

/// What clipping did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipOutcome {
    /// The total L2 norm before clipping.
    pub total_norm: f64,
    /// The factor every gradient was multiplied by.
    pub coef: f64,
}

/// Clips `grads` in place: `total = ‖g‖₂`, `coef = min(1, max_norm / (total + 1e-6))`,
/// `g ← g · coef`. Non-finite values follow IEEE arithmetic, as in PyTorch.
pub fn clip_grad_norm(grads: &mut [f64], max_norm: f64) -> ClipOutcome {
    let total_norm = grads.iter().map(|g| g * g).sum::<f64>().sqrt();
    let coef = (max_norm / (total_norm + 1e-6)).min(1.0);
    let coef = if total_norm.is_nan() { f64::NAN } else { coef };
    for g in grads.iter_mut() {
        *g *= coef;
    }
    ClipOutcome { total_norm, coef }
}
