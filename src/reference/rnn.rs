//! Single-layer vanilla RNN (PyTorch's `nn.RNN`, tanh or relu) forward and backward in f64, in
//! the same structures as the LSTM's (no gates, cell states zero).

// Index loops read like the equations.
#![allow(clippy::needless_range_loop)]

use super::lstm::{LstmForward, LstmGrads, LstmParams};
use super::{bptt, history, matvec, RowGrads};

/// `h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)` over `x [T, B, I]`, act = tanh, or relu
/// when `relu`; weights `[H, I]`, `[H, H]`, biases `[H]` (in the LSTM parameter struct).
pub fn rnn_forward(
    p: &LstmParams,
    x: &[f64],
    steps: usize,
    batch: usize,
    h0: Option<&[f64]>,
    relu: bool,
) -> LstmForward {
    let (n_in, n_h) = (p.input_size, p.hidden_size);
    assert_eq!(x.len(), steps * batch * n_in, "x must be [T, B, I]");
    let bh = batch * n_h;
    let mut hs = history(steps, batch, n_h, h0);
    for t in 0..steps {
        for b in 0..batch {
            let x_t = &x[(t * batch + b) * n_in..][..n_in];
            let h_prev = hs[t * bh + b * n_h..][..n_h].to_vec();
            for j in 0..n_h {
                let pre = matvec(&p.weight_ih, j, x_t)
                    + p.bias_ih[j]
                    + matvec(&p.weight_hh, j, &h_prev)
                    + p.bias_hh[j];
                hs[(t + 1) * bh + b * n_h + j] = if relu { pre.max(0.0) } else { pre.tanh() };
            }
        }
    }
    LstmForward::without_cell_state(steps, batch, hs, vec![])
}

/// Backpropagation through time for `dy [T, B, H]` and `dh_n`.
pub fn rnn_backward(
    p: &LstmParams,
    x: &[f64],
    fwd: &LstmForward,
    dy: &[f64],
    dh_n: Option<&[f64]>,
    relu: bool,
) -> LstmGrads {
    let (n_h, batch) = (p.hidden_size, fwd.batch);
    bptt(p, x, fwd, dy, dh_n, |t, b, dh, _| {
        let h = &fwd.hs[(t + 1) * batch * n_h + b * n_h..][..n_h];
        let d: Vec<f64> = dh
            .iter()
            .zip(h)
            .map(|(&dh, &h)| match relu {
                true if h > 0.0 => dh,
                true => 0.0,
                false => dh * (1.0 - h * h),
            })
            .collect();
        RowGrads {
            d_in: d.clone(),
            d_rec: d,
            dh_direct: None,
        }
    })
}
