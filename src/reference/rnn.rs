//! Single-layer vanilla RNN (PyTorch's `nn.RNN`, tanh or relu) forward and backward in f64, in
//! the same structures as the LSTM's (no gates, cell states zero).

// Index loops read like the equations.
#![allow(clippy::needless_range_loop)]

use super::lstm::{LstmForward, LstmGrads, LstmParams};
use super::{accumulate_row, matvec};

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
    let mut hs = vec![0.0; (steps + 1) * bh];
    if let Some(h0) = h0 {
        hs[..bh].copy_from_slice(h0);
    }
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
    LstmForward {
        steps,
        batch,
        y: hs[bh..].to_vec(),
        h_n: hs[steps * bh..].to_vec(),
        c_n: vec![0.0; bh],
        gates: vec![],
        cs: vec![0.0; (steps + 1) * bh],
        hu: vec![],
        hs,
    }
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
    let (n_in, n_h, steps, batch) = (p.input_size, p.hidden_size, fwd.steps, fwd.batch);
    let bh = batch * n_h;
    let mut g = LstmGrads::zeros(p, steps, batch);
    let mut dh = dh_n.map_or(vec![0.0; bh], <[f64]>::to_vec);
    for t in (0..steps).rev() {
        let mut dh_prev = vec![0.0; bh];
        for b in 0..batch {
            let mut dpre = vec![0.0; n_h];
            for j in 0..n_h {
                let cell = b * n_h + j;
                let h = fwd.hs[(t + 1) * bh + cell];
                let dh_t = dy[t * bh + cell] + dh[cell];
                g.dh_steps[t * bh + cell] = dh_t;
                dpre[j] = if relu {
                    if h > 0.0 {
                        dh_t
                    } else {
                        0.0
                    }
                } else {
                    dh_t * (1.0 - h * h)
                };
            }
            let x_t = &x[(t * batch + b) * n_in..][..n_in];
            let h_prev = &fwd.hs[t * bh + b * n_h..][..n_h];
            let dx = &mut g.x[(t * batch + b) * n_in..][..n_in];
            accumulate_row(
                p,
                (&mut g.weight_ih, &mut g.weight_hh),
                (&mut g.bias_ih, &mut g.bias_hh),
                (&dpre, &dpre),
                (x_t, h_prev),
                (dx, &mut dh_prev[b * n_h..][..n_h]),
            );
        }
        dh = dh_prev;
    }
    g.h0 = dh;
    g
}
