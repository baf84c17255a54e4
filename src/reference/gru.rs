//! Single-layer GRU (PyTorch's `nn.GRU`) forward and backward in f64, in the LSTM's structures
//! (no cell state).

// Index loops read like the equations.
#![allow(clippy::needless_range_loop)]

use super::lstm::{LstmForward, LstmGrads, LstmParams};
use super::{bptt, history, matvec, sigmoid, RowGrads};

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
    let mut hs = history(steps, batch, n_h, h0);
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
    LstmForward::without_cell_state(steps, batch, hs, gates)
}

/// Backpropagation through time for `dy [T, B, H]` and `dh_n`.
pub fn gru_backward(
    p: &LstmParams,
    x: &[f64],
    fwd: &LstmForward,
    dy: &[f64],
    dh_n: Option<&[f64]>,
) -> LstmGrads {
    let (n_h, batch) = (p.hidden_size, fwd.batch);
    bptt(p, x, fwd, dy, dh_n, |t, b, dh, _| {
        let kept = &fwd.gates[(t * batch + b) * 4 * n_h..][..4 * n_h];
        let h_prev = &fwd.hs[t * batch * n_h + b * n_h..][..n_h];
        // The input-side and recurrent-side pre-activation gradients differ in the n block,
        // where the recurrent side is multiplied by r.
        let (mut d_in, mut d_rec) = (vec![0.0; 3 * n_h], vec![0.0; 3 * n_h]);
        let mut direct = vec![0.0; n_h];
        for j in 0..n_h {
            let (r, z, n, hn) = (kept[j], kept[n_h + j], kept[2 * n_h + j], kept[3 * n_h + j]);
            let dn = dh[j] * (1.0 - z) * (1.0 - n * n);
            let dz = dh[j] * (h_prev[j] - n) * z * (1.0 - z);
            let dr = dn * hn * r * (1.0 - r);
            (d_in[j], d_in[n_h + j], d_in[2 * n_h + j]) = (dr, dz, dn);
            (d_rec[j], d_rec[n_h + j], d_rec[2 * n_h + j]) = (dr, dz, dn * r);
            // The explicit path: h_t = … + z ⊙ h_{t-1}.
            direct[j] = dh[j] * z;
        }
        RowGrads {
            d_in,
            d_rec,
            dh_direct: Some(direct),
        }
    })
}
