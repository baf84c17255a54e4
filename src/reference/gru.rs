//! Single-layer GRU (PyTorch's `nn.GRU`) forward and backward in f64, in the LSTM's structures
//! (no cell state).

// Index loops read like the equations.
#![allow(clippy::needless_range_loop)]

use super::lstm::{LstmForward, LstmGrads, LstmParams};
use super::{accumulate_row, matvec, sigmoid};

/// Runs the GRU over `x [T, B, I]` from `h0 [B, H]` (zeros when `None`); gate rows r, z, n:
///
/// ```text
/// r = σ(W_ir x + b_ir + W_hr h + b_hr),   z = σ(W_iz x + b_iz + W_hz h + b_hz)
/// n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),   h' = (1 - z) ⊙ n + z ⊙ h
/// ```
///
/// Keeps r, z, n and `W_hn h + b_hn` per step in `gates [T, B, 4H]`.
pub fn gru_forward(
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
    let mut gates = vec![0.0; steps * batch * 4 * n_h];
    for t in 0..steps {
        for b in 0..batch {
            let x_t = &x[(t * batch + b) * n_in..][..n_in];
            let h_prev = hs[t * bh + b * n_h..][..n_h].to_vec();
            let input = |row: usize| matvec(&p.weight_ih, row, x_t) + p.bias_ih[row];
            let recurrent = |row: usize| matvec(&p.weight_hh, row, &h_prev) + p.bias_hh[row];
            for j in 0..n_h {
                let r = sigmoid(input(j) + recurrent(j));
                let z = sigmoid(input(n_h + j) + recurrent(n_h + j));
                let hn = recurrent(2 * n_h + j);
                let n = (input(2 * n_h + j) + r * hn).tanh();
                hs[(t + 1) * bh + b * n_h + j] = (1.0 - z) * n + z * h_prev[j];
                let kept = &mut gates[(t * batch + b) * 4 * n_h..][..4 * n_h];
                kept[j] = r;
                kept[n_h + j] = z;
                kept[2 * n_h + j] = n;
                kept[3 * n_h + j] = hn;
            }
        }
    }
    LstmForward {
        steps,
        batch,
        y: hs[bh..].to_vec(),
        h_n: hs[steps * bh..].to_vec(),
        c_n: vec![0.0; bh],
        gates,
        cs: vec![0.0; (steps + 1) * bh],
        hu: vec![],
        hs,
    }
}

/// Backpropagation through time for `dy [T, B, H]` and `dh_n`.
pub fn gru_backward(
    p: &LstmParams,
    x: &[f64],
    fwd: &LstmForward,
    dy: &[f64],
    dh_n: Option<&[f64]>,
) -> LstmGrads {
    let (n_in, n_h, steps, batch) = (p.input_size, p.hidden_size, fwd.steps, fwd.batch);
    let bh = batch * n_h;
    let mut g = LstmGrads::zeros(p, steps, batch);
    let mut dh = dh_n.map_or(vec![0.0; bh], <[f64]>::to_vec);
    for t in (0..steps).rev() {
        let mut dh_prev = vec![0.0; bh];
        for b in 0..batch {
            let kept = &fwd.gates[(t * batch + b) * 4 * n_h..][..4 * n_h];
            let h_prev = &fwd.hs[t * bh + b * n_h..][..n_h];
            // Gradients of the input-side and recurrent-side pre-activations: they differ in
            // the n block, where the recurrent side is multiplied by r.
            let (mut d_in, mut d_rec) = (vec![0.0; 3 * n_h], vec![0.0; 3 * n_h]);
            for j in 0..n_h {
                let cell = b * n_h + j;
                let (r, z, n, hn) = (kept[j], kept[n_h + j], kept[2 * n_h + j], kept[3 * n_h + j]);
                let dh_t = dy[t * bh + cell] + dh[cell];
                g.dh_steps[t * bh + cell] = dh_t;
                let dn = dh_t * (1.0 - z) * (1.0 - n * n);
                let dz = dh_t * (h_prev[j] - n) * z * (1.0 - z);
                let dr = dn * hn * r * (1.0 - r);
                (d_in[j], d_in[n_h + j], d_in[2 * n_h + j]) = (dr, dz, dn);
                (d_rec[j], d_rec[n_h + j], d_rec[2 * n_h + j]) = (dr, dz, dn * r);
                // The explicit path: h' = … + z ⊙ h.
                dh_prev[cell] += dh_t * z;
            }
            let x_t = &x[(t * batch + b) * n_in..][..n_in];
            let dx = &mut g.x[(t * batch + b) * n_in..][..n_in];
            accumulate_row(
                p,
                (&mut g.weight_ih, &mut g.weight_hh),
                (&mut g.bias_ih, &mut g.bias_hh),
                (&d_in, &d_rec),
                (x_t, h_prev),
                (dx, &mut dh_prev[b * n_h..][..n_h]),
            );
        }
        dh = dh_prev;
    }
    g.h0 = dh;
    g
}
