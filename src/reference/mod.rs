//! Plain-Rust f64 implementations that read like the equations; the oracle of the tests.
//!
//! Layouts follow PyTorch: sequences `[T, B, F]`, weights `weight_ih [G·H, I]`,
//! `weight_hh [G·H, R]`, biases `[G·H]`, gate rows in PyTorch's order (LSTM i, f, g, o;
//! GRU r, z, n).

mod clip;
mod gru;
mod lstm;
mod optim;
mod rnn;
mod stack;

pub use clip::{clip_grad_norm, ClipOutcome};
pub use gru::{gru_backward, gru_forward};
pub use lstm::{lstm_backward, lstm_forward, LstmForward, LstmGrads, LstmParams};
pub use optim::{adam_step, sgd_step};
pub use rnn::{rnn_backward, rnn_forward};
pub use stack::{stack_backward, stack_forward, StackGrads, StackInputs, StackOutput, StackShape};

pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Row `row` of the row-major matrix `w` (rows of `v.len()` values) times `v`.
pub(crate) fn matvec(w: &[f64], row: usize, v: &[f64]) -> f64 {
    w[row * v.len()..][..v.len()]
        .iter()
        .zip(v)
        .map(|(a, b)| a * b)
        .sum()
}

/// Adds one batch row's share of the gradients, given the gradients of its input-side
/// pre-activations `d_in` (`W_ih x + b_ih`) and recurrent-side ones `d_rec` (`W_hh h + b_hh`;
/// the same for the LSTM and the RNN, not for the GRU): the weight and bias gradients, and
/// `dx += d_inᵀ W_ih`, `dh_prev += d_recᵀ W_hh`.
pub(crate) fn accumulate_row(
    p: &LstmParams,
    (d_weight_ih, d_weight_hh): (&mut [f64], &mut [f64]),
    (d_bias_ih, d_bias_hh): (&mut [f64], &mut [f64]),
    (d_in, d_rec): (&[f64], &[f64]),
    (x_t, h_prev): (&[f64], &[f64]),
    (dx, dh_prev): (&mut [f64], &mut [f64]),
) {
    let (n_in, r) = (x_t.len(), h_prev.len());
    for (row, (&di, &dr)) in d_in.iter().zip(d_rec).enumerate() {
        d_bias_ih[row] += di;
        d_bias_hh[row] += dr;
        for k in 0..n_in {
            d_weight_ih[row * n_in + k] += di * x_t[k];
            dx[k] += di * p.weight_ih[row * n_in + k];
        }
        for k in 0..r {
            d_weight_hh[row * r + k] += dr * h_prev[k];
            dh_prev[k] += dr * p.weight_hh[row * r + k];
        }
    }
}
