//! Single-layer LSTM forward and backward in f64.

// Index loops read like the equations (sums over k of W[row, k]·x[k]).
#![allow(clippy::needless_range_loop)]

use super::sigmoid;

/// The parameters of one LSTM layer, in PyTorch's layout.
#[derive(Debug, Clone)]
pub struct LstmParams {
    /// Input features I.
    pub input_size: usize,
    /// Hidden units H.
    pub hidden_size: usize,
    /// `[4H, I]`.
    pub weight_ih: Vec<f64>,
    /// `[4H, H]`.
    pub weight_hh: Vec<f64>,
    /// `[4H]`.
    pub bias_ih: Vec<f64>,
    /// `[4H]`.
    pub bias_hh: Vec<f64>,
}

/// Everything the forward pass computes, the backward pass's inputs included.
#[derive(Debug, Clone)]
pub struct LstmForward {
    /// Timesteps T.
    pub steps: usize,
    /// Batch B.
    pub batch: usize,
    /// `y [T, B, H]`.
    pub y: Vec<f64>,
    /// `h_n [B, H]`.
    pub h_n: Vec<f64>,
    /// `c_n [B, H]`.
    pub c_n: Vec<f64>,
    /// Activated gates `[T, B, 4H]` (i, f, g, o).
    pub gates: Vec<f64>,
    /// Hidden states `[T+1, B, H]`, `hs[0] = h0`.
    pub hs: Vec<f64>,
    /// Cell states `[T+1, B, H]`, `cs[0] = c0`.
    pub cs: Vec<f64>,
}

/// Gradients of every input of the forward pass.
#[derive(Debug, Clone)]
pub struct LstmGrads {
    /// `[T, B, I]`.
    pub x: Vec<f64>,
    /// `[B, H]`.
    pub h0: Vec<f64>,
    /// `[B, H]`.
    pub c0: Vec<f64>,
    /// `[4H, I]`.
    pub weight_ih: Vec<f64>,
    /// `[4H, H]`.
    pub weight_hh: Vec<f64>,
    /// `[4H]`.
    pub bias_ih: Vec<f64>,
    /// `[4H]`.
    pub bias_hh: Vec<f64>,
    /// ∂L/∂h_k for every step k, `[T, B, H]` (the total gradient reaching h_k).
    pub dh_steps: Vec<f64>,
    /// ∂L/∂c_k for every step k, `[T, B, H]`.
    pub dc_steps: Vec<f64>,
}

/// Runs the LSTM over `x [T, B, I]` from `h0`, `c0` (`[B, H]`, zeros when `None`):
///
/// ```text
/// i, f, g, o = σ(W_ii x + b_ii + W_hi h + b_hi), σ(…), tanh(…), σ(…)
/// c' = f ⊙ c + i ⊙ g,   h' = o ⊙ tanh(c')
/// ```
pub fn lstm_forward(
    p: &LstmParams,
    x: &[f64],
    steps: usize,
    batch: usize,
    h0: Option<&[f64]>,
    c0: Option<&[f64]>,
) -> LstmForward {
    let (n_in, n_h) = (p.input_size, p.hidden_size);
    assert_eq!(x.len(), steps * batch * n_in, "x must be [T, B, I]");
    let bh = batch * n_h;
    let mut hs = vec![0.0; (steps + 1) * bh];
    let mut cs = vec![0.0; (steps + 1) * bh];
    if let Some(h0) = h0 {
        hs[..bh].copy_from_slice(h0);
    }
    if let Some(c0) = c0 {
        cs[..bh].copy_from_slice(c0);
    }
    let mut gates = vec![0.0; steps * batch * 4 * n_h];
    for t in 0..steps {
        for b in 0..batch {
            let x_t = &x[(t * batch + b) * n_in..][..n_in];
            let h_prev = hs[t * bh + b * n_h..][..n_h].to_vec();
            for j in 0..n_h {
                let pre = |gate: usize| {
                    let row = gate * n_h + j;
                    let wx: f64 = (0..n_in)
                        .map(|k| p.weight_ih[row * n_in + k] * x_t[k])
                        .sum();
                    let wh: f64 = (0..n_h)
                        .map(|k| p.weight_hh[row * n_h + k] * h_prev[k])
                        .sum();
                    wx + p.bias_ih[row] + wh + p.bias_hh[row]
                };
                let (i, f, g, o) = (
                    sigmoid(pre(0)),
                    sigmoid(pre(1)),
                    pre(2).tanh(),
                    sigmoid(pre(3)),
                );
                let c = f * cs[t * bh + b * n_h + j] + i * g;
                cs[(t + 1) * bh + b * n_h + j] = c;
                hs[(t + 1) * bh + b * n_h + j] = o * c.tanh();
                let gate_row = &mut gates[(t * batch + b) * 4 * n_h..][..4 * n_h];
                gate_row[j] = i;
                gate_row[n_h + j] = f;
                gate_row[2 * n_h + j] = g;
                gate_row[3 * n_h + j] = o;
            }
        }
    }
    LstmForward {
        steps,
        batch,
        y: hs[bh..].to_vec(),
        h_n: hs[steps * bh..].to_vec(),
        c_n: cs[steps * bh..].to_vec(),
        gates,
        hs,
        cs,
    }
}

/// Backpropagation through time for a loss whose gradients with respect to the outputs are
/// `dy [T, B, H]`, `dh_n`, `dc_n` (`[B, H]`, zeros when `None`).
pub fn lstm_backward(
    p: &LstmParams,
    x: &[f64],
    fwd: &LstmForward,
    dy: &[f64],
    dh_n: Option<&[f64]>,
    dc_n: Option<&[f64]>,
) -> LstmGrads {
    let (n_in, n_h, steps, batch) = (p.input_size, p.hidden_size, fwd.steps, fwd.batch);
    let bh = batch * n_h;
    let mut g = LstmGrads {
        x: vec![0.0; steps * batch * n_in],
        h0: vec![0.0; bh],
        c0: vec![0.0; bh],
        weight_ih: vec![0.0; 4 * n_h * n_in],
        weight_hh: vec![0.0; 4 * n_h * n_h],
        bias_ih: vec![0.0; 4 * n_h],
        bias_hh: vec![0.0; 4 * n_h],
        dh_steps: vec![0.0; steps * bh],
        dc_steps: vec![0.0; steps * bh],
    };
    // dh, dc: gradients flowing into h_t and c_t from later timesteps.
    let mut dh = dh_n.map_or(vec![0.0; bh], <[f64]>::to_vec);
    let mut dc = dc_n.map_or(vec![0.0; bh], <[f64]>::to_vec);
    for t in (0..steps).rev() {
        let mut dh_prev = vec![0.0; bh];
        for b in 0..batch {
            let gate_row = &fwd.gates[(t * batch + b) * 4 * n_h..][..4 * n_h];
            let mut dpre = vec![0.0; 4 * n_h]; // dL/d(pre-activation) of the 4 gates
            for j in 0..n_h {
                let cell = b * n_h + j;
                let (i, f, gg, o) = (
                    gate_row[j],
                    gate_row[n_h + j],
                    gate_row[2 * n_h + j],
                    gate_row[3 * n_h + j],
                );
                let c = fwd.cs[(t + 1) * bh + cell];
                let c_prev = fwd.cs[t * bh + cell];
                let dh_t = dy[t * bh + cell] + dh[cell];
                let tc = c.tanh();
                let dc_t = dc[cell] + dh_t * o * (1.0 - tc * tc);
                g.dh_steps[t * bh + cell] = dh_t;
                g.dc_steps[t * bh + cell] = dc_t;
                dpre[j] = dc_t * gg * i * (1.0 - i);
                dpre[n_h + j] = dc_t * c_prev * f * (1.0 - f);
                dpre[2 * n_h + j] = dc_t * i * (1.0 - gg * gg);
                dpre[3 * n_h + j] = dh_t * tc * o * (1.0 - o);
                dc[cell] = dc_t * f;
            }
            let x_t = &x[(t * batch + b) * n_in..][..n_in];
            let h_prev = &fwd.hs[t * bh + b * n_h..][..n_h];
            for (row, &d) in dpre.iter().enumerate() {
                g.bias_ih[row] += d;
                g.bias_hh[row] += d;
                for k in 0..n_in {
                    g.weight_ih[row * n_in + k] += d * x_t[k];
                    g.x[(t * batch + b) * n_in + k] += d * p.weight_ih[row * n_in + k];
                }
                for k in 0..n_h {
                    g.weight_hh[row * n_h + k] += d * h_prev[k];
                    dh_prev[b * n_h + k] += d * p.weight_hh[row * n_h + k];
                }
            }
        }
        dh = dh_prev;
    }
    g.h0 = dh;
    g.c0 = dc;
    g
}
