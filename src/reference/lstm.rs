//! Single-layer LSTM forward and backward in f64, with optional projections
//! (`nn.LSTM(proj_size=P)`: `h_t = W_hr (o_t ⊙ tanh(c_t))`).

// Index loops read like the equations (sums over k of W[row, k]·x[k]).
#![allow(clippy::needless_range_loop)]

use super::{bptt, history, matvec, sigmoid, RowGrads};

/// The parameters of one recurrent layer, in PyTorch's layout (G gate rows per unit: 4 for
/// the LSTM, 3 for the GRU, 1 for the RNN).
#[derive(Debug, Clone)]
pub struct LstmParams {
    /// Input features I.
    pub input_size: usize,
    /// Hidden units H.
    pub hidden_size: usize,
    /// `[G·H, I]`.
    pub weight_ih: Vec<f64>,
    /// `[G·H, R]` (R = P with projections, else H).
    pub weight_hh: Vec<f64>,
    /// `[G·H]`.
    pub bias_ih: Vec<f64>,
    /// `[G·H]`.
    pub bias_hh: Vec<f64>,
    /// `[P, H]`: the LSTM's projection, if any.
    pub weight_hr: Option<Vec<f64>>,
}

impl LstmParams {
    /// R: the width of h.
    pub fn output_size(&self) -> usize {
        self.weight_hr
            .as_ref()
            .map_or(self.hidden_size, |w| w.len() / self.hidden_size)
    }
}

/// Everything the forward pass computes, the backward pass's inputs included.
#[derive(Debug, Clone)]
pub struct LstmForward {
    /// Timesteps T.
    pub steps: usize,
    /// Batch B.
    pub batch: usize,
    /// `y [T, B, R]`.
    pub y: Vec<f64>,
    /// `h_n [B, R]`.
    pub h_n: Vec<f64>,
    /// `c_n [B, H]`.
    pub c_n: Vec<f64>,
    /// What the cell keeps per step, `[T, B, 4H]`: the LSTM's activated gates (i, f, g, o),
    /// the GRU's r, z, n and `W_hn h + b_hn`.
    pub gates: Vec<f64>,
    /// Hidden states `[T+1, B, R]`, `hs[0] = h0`.
    pub hs: Vec<f64>,
    /// Cell states `[T+1, B, H]`, `cs[0] = c0`.
    pub cs: Vec<f64>,
    /// With projections, `o_t ⊙ tanh(c_t)` `[T, B, H]`; else empty.
    pub hu: Vec<f64>,
}

impl LstmForward {
    /// The forward pass of a cell without a cell state, from its h history `[T+1, B, H]` and
    /// what it keeps per step.
    pub(crate) fn without_cell_state(
        steps: usize,
        batch: usize,
        hs: Vec<f64>,
        gates: Vec<f64>,
    ) -> LstmForward {
        let bh = hs.len() / (steps + 1);
        LstmForward {
            steps,
            batch,
            y: hs[bh..].to_vec(),
            h_n: hs[steps * bh..].to_vec(),
            c_n: vec![0.0; bh],
            gates,
            cs: vec![0.0; hs.len()],
            hu: vec![],
            hs,
        }
    }
}

/// Gradients of every input of the forward pass.
#[derive(Debug, Clone)]
pub struct LstmGrads {
    /// `[T, B, I]`.
    pub x: Vec<f64>,
    /// `[B, R]`.
    pub h0: Vec<f64>,
    /// `[B, H]`.
    pub c0: Vec<f64>,
    /// `[G·H, I]`.
    pub weight_ih: Vec<f64>,
    /// `[G·H, R]`.
    pub weight_hh: Vec<f64>,
    /// `[G·H]`.
    pub bias_ih: Vec<f64>,
    /// `[G·H]`.
    pub bias_hh: Vec<f64>,
    /// `[P, H]` with projections, else empty.
    pub weight_hr: Vec<f64>,
    /// ∂L/∂h_k for every step k, `[T, B, R]` (the total gradient reaching h_k).
    pub dh_steps: Vec<f64>,
    /// ∂L/∂c_k for every step k, `[T, B, H]`.
    pub dc_steps: Vec<f64>,
}

impl LstmGrads {
    /// Zero gradients for `p` over `steps` × `batch`.
    pub(crate) fn zeros(p: &LstmParams, steps: usize, batch: usize) -> LstmGrads {
        let (n_h, r) = (p.hidden_size, p.output_size());
        LstmGrads {
            x: vec![0.0; steps * batch * p.input_size],
            h0: vec![0.0; batch * r],
            c0: vec![0.0; batch * n_h],
            weight_ih: vec![0.0; p.weight_ih.len()],
            weight_hh: vec![0.0; p.weight_hh.len()],
            bias_ih: vec![0.0; p.bias_ih.len()],
            bias_hh: vec![0.0; p.bias_hh.len()],
            weight_hr: vec![0.0; p.weight_hr.as_ref().map_or(0, Vec::len)],
            dh_steps: vec![0.0; steps * batch * r],
            dc_steps: vec![0.0; steps * batch * n_h],
        }
    }
}

/// Runs the LSTM over `x [T, B, I]` from `h0 [B, R]`, `c0 [B, H]` (zeros when `None`):
///
/// ```text
/// i, f, g, o = σ(W_ii x + b_ii + W_hi h + b_hi), σ(…), tanh(…), σ(…)
/// c' = f ⊙ c + i ⊙ g,   h' = o ⊙ tanh(c')   (h' = W_hr (o ⊙ tanh(c')) with projections)
/// ```
pub fn lstm_forward(
    p: &LstmParams,
    x: &[f64],
    steps: usize,
    batch: usize,
    h0: Option<&[f64]>,
    c0: Option<&[f64]>,
) -> LstmForward {
    let (n_in, n_h, r) = (p.input_size, p.hidden_size, p.output_size());
    assert_eq!(x.len(), steps * batch * n_in, "x must be [T, B, I]");
    let (bh, br) = (batch * n_h, batch * r);
    let mut hs = history(steps, batch, r, h0);
    let mut cs = history(steps, batch, n_h, c0);
    let mut gates = vec![0.0; steps * batch * 4 * n_h];
    let mut hu = vec![0.0; if p.weight_hr.is_some() { steps * bh } else { 0 }];
    for t in 0..steps {
        for b in 0..batch {
            let x_t = &x[(t * batch + b) * n_in..][..n_in];
            let h_prev = hs[t * br + b * r..][..r].to_vec();
            let pre: Vec<f64> = (0..4 * n_h)
                .map(|row| {
                    matvec(&p.weight_ih, row, x_t)
                        + p.bias_ih[row]
                        + matvec(&p.weight_hh, row, &h_prev)
                        + p.bias_hh[row]
                })
                .collect();
            let mut out = vec![0.0; n_h];
            for j in 0..n_h {
                let (i, f, g, o) = (
                    sigmoid(pre[j]),
                    sigmoid(pre[n_h + j]),
                    pre[2 * n_h + j].tanh(),
                    sigmoid(pre[3 * n_h + j]),
                );
                let c = f * cs[t * bh + b * n_h + j] + i * g;
                cs[(t + 1) * bh + b * n_h + j] = c;
                out[j] = o * c.tanh();
                let gate_row = &mut gates[(t * batch + b) * 4 * n_h..][..4 * n_h];
                gate_row[j] = i;
                gate_row[n_h + j] = f;
                gate_row[2 * n_h + j] = g;
                gate_row[3 * n_h + j] = o;
            }
            let h = &mut hs[(t + 1) * br + b * r..][..r];
            match &p.weight_hr {
                Some(w_hr) => {
                    hu[(t * batch + b) * n_h..][..n_h].copy_from_slice(&out);
                    for (k, h) in h.iter_mut().enumerate() {
                        *h = matvec(w_hr, k, &out);
                    }
                }
                None => h.copy_from_slice(&out),
            }
        }
    }
    LstmForward {
        steps,
        batch,
        y: hs[br..].to_vec(),
        h_n: hs[steps * br..].to_vec(),
        c_n: cs[steps * bh..].to_vec(),
        gates,
        hs,
        cs,
        hu,
    }
}

/// Backpropagation through time for a loss whose gradients with respect to the outputs are
/// `dy [T, B, R]`, `dh_n [B, R]`, `dc_n [B, H]` (zeros when `None`).
pub fn lstm_backward(
    p: &LstmParams,
    x: &[f64],
    fwd: &LstmForward,
    dy: &[f64],
    dh_n: Option<&[f64]>,
    dc_n: Option<&[f64]>,
) -> LstmGrads {
    let (n_h, r, batch) = (p.hidden_size, p.output_size(), fwd.batch);
    let bh = batch * n_h;
    // dc: the gradient flowing into c_t from later timesteps.
    let mut dc = dc_n.map_or(vec![0.0; bh], <[f64]>::to_vec);
    let mut g = bptt(p, x, fwd, dy, dh_n, |t, b, dh_t, g| {
        let gate_row = &fwd.gates[(t * batch + b) * 4 * n_h..][..4 * n_h];
        // The gradient of the unprojected o ⊙ tanh(c_t).
        let dhu: Vec<f64> = match &p.weight_hr {
            Some(w_hr) => {
                let hu = &fwd.hu[(t * batch + b) * n_h..][..n_h];
                for k in 0..r {
                    for j in 0..n_h {
                        g.weight_hr[k * n_h + j] += dh_t[k] * hu[j];
                    }
                }
                (0..n_h)
                    .map(|j| (0..r).map(|k| dh_t[k] * w_hr[k * n_h + j]).sum())
                    .collect()
            }
            None => dh_t.to_vec(),
        };
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
            let tc = c.tanh();
            let dc_t = dc[cell] + dhu[j] * o * (1.0 - tc * tc);
            g.dc_steps[t * bh + cell] = dc_t;
            dpre[j] = dc_t * gg * i * (1.0 - i);
            dpre[n_h + j] = dc_t * c_prev * f * (1.0 - f);
            dpre[2 * n_h + j] = dc_t * i * (1.0 - gg * gg);
            dpre[3 * n_h + j] = dhu[j] * tc * o * (1.0 - o);
            dc[cell] = dc_t * f;
        }
        RowGrads {
            d_in: dpre.clone(),
            d_rec: dpre,
            dh_direct: None,
        }
    });
    g.c0 = dc;
    g
}
