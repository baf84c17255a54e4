//! Single-layer vanilla RNN (PyTorch's `nn.RNN`, tanh) forward and backward in f64, in the same
//! structures as the LSTM's (no gates, cell states zero).

// Index loops read like the equations.
#![allow(clippy::needless_range_loop)]

use super::lstm::{LstmForward, LstmGrads, LstmParams};

/// `h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)` over `x [T, B, I]`; weights `[H, I]`,
/// `[H, H]`, biases `[H]` (in the LSTM parameter struct).
pub fn rnn_forward(
    p: &LstmParams,
    x: &[f64],
    steps: usize,
    batch: usize,
    h0: Option<&[f64]>,
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
            for j in 0..n_h {
                let wx: f64 = (0..n_in).map(|k| p.weight_ih[j * n_in + k] * x_t[k]).sum();
                let wh: f64 = (0..n_h)
                    .map(|k| p.weight_hh[j * n_h + k] * hs[t * bh + b * n_h + k])
                    .sum();
                hs[(t + 1) * bh + b * n_h + j] = (wx + p.bias_ih[j] + wh + p.bias_hh[j]).tanh();
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
) -> LstmGrads {
    let (n_in, n_h, steps, batch) = (p.input_size, p.hidden_size, fwd.steps, fwd.batch);
    let bh = batch * n_h;
    let mut g = LstmGrads {
        x: vec![0.0; steps * batch * n_in],
        h0: vec![0.0; bh],
        c0: vec![0.0; bh],
        weight_ih: vec![0.0; n_h * n_in],
        weight_hh: vec![0.0; n_h * n_h],
        bias_ih: vec![0.0; n_h],
        bias_hh: vec![0.0; n_h],
        dh_steps: vec![0.0; steps * bh],
        dc_steps: vec![0.0; steps * bh],
    };
    let mut dh = dh_n.map_or(vec![0.0; bh], <[f64]>::to_vec);
    for t in (0..steps).rev() {
        let mut dh_prev = vec![0.0; bh];
        for b in 0..batch {
            let x_t = &x[(t * batch + b) * n_in..][..n_in];
            let h_prev = &fwd.hs[t * bh + b * n_h..][..n_h];
            for j in 0..n_h {
                let cell = b * n_h + j;
                let h = fwd.hs[(t + 1) * bh + cell];
                let dh_t = dy[t * bh + cell] + dh[cell];
                g.dh_steps[t * bh + cell] = dh_t;
                let d = dh_t * (1.0 - h * h);
                g.bias_ih[j] += d;
                g.bias_hh[j] += d;
                for k in 0..n_in {
                    g.weight_ih[j * n_in + k] += d * x_t[k];
                    g.x[(t * batch + b) * n_in + k] += d * p.weight_ih[j * n_in + k];
                }
                for k in 0..n_h {
                    g.weight_hh[j * n_h + k] += d * h_prev[k];
                    dh_prev[b * n_h + k] += d * p.weight_hh[j * n_h + k];
                }
            }
        }
        dh = dh_prev;
    }
    g.h0 = dh;
    g
}
