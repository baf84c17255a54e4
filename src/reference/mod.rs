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

/// A history `[T+1, B, width]` of states whose first row is `initial` (zeros when `None`).
pub(crate) fn history(
    steps: usize,
    batch: usize,
    width: usize,
    initial: Option<&[f64]>,
) -> Vec<f64> {
    let mut states = vec![0.0; (steps + 1) * batch * width];
    if let Some(initial) = initial {
        states[..batch * width].copy_from_slice(initial);
    }
    states
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
fn accumulate_row(
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

/// What a cell's backward step gives for one batch row: the gradients of its input-side and
/// recurrent-side pre-activations, and what flows to h_{t-1} directly (not through W_hh).
pub(crate) struct RowGrads {
    pub d_in: Vec<f64>,
    pub d_rec: Vec<f64>,
    pub dh_direct: Option<Vec<f64>>,
}

/// Backpropagation through time shared by the cells: for every step in reverse and every batch
/// row, the whole gradient reaching h_t (dy_t plus what came back from t+1) goes to `cell`,
/// which returns the row's pre-activation gradients (and may update `g` itself, e.g. a
/// projection's weight); the weight and input gradients and dh_{t-1} follow.
pub(crate) fn bptt(
    p: &LstmParams,
    x: &[f64],
    fwd: &LstmForward,
    dy: &[f64],
    dh_n: Option<&[f64]>,
    mut cell: impl FnMut(usize, usize, &[f64], &mut LstmGrads) -> RowGrads,
) -> LstmGrads {
    let (n_in, r, steps, batch) = (p.input_size, p.output_size(), fwd.steps, fwd.batch);
    let br = batch * r;
    let mut g = LstmGrads::zeros(p, steps, batch);
    // dh: the gradient flowing into h_t from later timesteps.
    let mut dh = dh_n.map_or(vec![0.0; br], <[f64]>::to_vec);
    for t in (0..steps).rev() {
        let mut dh_prev = vec![0.0; br];
        for b in 0..batch {
            let dh_t: Vec<f64> = (0..r)
                .map(|k| dy[t * br + b * r + k] + dh[b * r + k])
                .collect();
            g.dh_steps[t * br + b * r..][..r].copy_from_slice(&dh_t);
            let row = cell(t, b, &dh_t, &mut g);
            let dh_row = &mut dh_prev[b * r..][..r];
            if let Some(direct) = &row.dh_direct {
                dh_row.iter_mut().zip(direct).for_each(|(a, d)| *a += d);
            }
            accumulate_row(
                p,
                (&mut g.weight_ih, &mut g.weight_hh),
                (&mut g.bias_ih, &mut g.bias_hh),
                (&row.d_in, &row.d_rec),
                (
                    &x[(t * batch + b) * n_in..][..n_in],
                    &fwd.hs[t * br + b * r..][..r],
                ),
                (&mut g.x[(t * batch + b) * n_in..][..n_in], dh_row),
            );
        }
        dh = dh_prev;
    }
    g.h0 = dh;
    g
}
