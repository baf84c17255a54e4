//! Stacked, bidirectional, variable-length recurrent models in f64 (every cell), composed from
//! the single-layer references one sequence at a time: a sequence of length L is run over its
//! first L steps only, the reverse direction over those steps reversed. This is the obvious
//! (slow) reading of PyTorch's `nn.LSTM` (`nn.GRU`, `nn.RNN`) with a `PackedSequence`; dropout
//! is not modelled (p = 0).

use super::gru::{gru_backward, gru_forward};
use super::lstm::{lstm_backward, lstm_forward, LstmForward, LstmGrads, LstmParams};
use super::rnn::{rnn_backward, rnn_forward};
use crate::model::{Cell, LstmConfig, Nonlinearity};
use std::collections::HashMap;

/// Shape of a stacked model (PyTorch's options without dropout and layout).
#[derive(Debug, Clone, Copy)]
pub struct StackShape {
    /// The cell.
    pub cell: Cell,
    /// Input features I.
    pub input_size: usize,
    /// Hidden units H.
    pub hidden_size: usize,
    /// Layers L.
    pub num_layers: usize,
    /// Two directions when true.
    pub bidirectional: bool,
    /// LSTM projections P (0: none).
    pub proj_size: usize,
    /// The RNN's relu instead of tanh.
    pub relu: bool,
}

impl StackShape {
    /// The shape of a model with `config`.
    pub fn of(config: &LstmConfig) -> StackShape {
        StackShape {
            cell: config.cell,
            input_size: config.input_size,
            hidden_size: config.hidden_size,
            num_layers: config.num_layers,
            bidirectional: config.bidirectional,
            proj_size: config.proj_size,
            relu: config.nonlinearity == Nonlinearity::Relu,
        }
    }

    fn dirs(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// R: the width of h.
    fn out(&self) -> usize {
        if self.proj_size > 0 {
            self.proj_size
        } else {
            self.hidden_size
        }
    }
}

/// The inputs of a stacked model: `x [T, B, I]`, the lengths (T for every sequence when
/// `None`) and the initial states `h0 [L·D, B, R]`, `c0 [L·D, B, H]` (zeros when `None`).
#[derive(Debug, Clone, Copy)]
pub struct StackInputs<'a> {
    /// `[T, B, I]`.
    pub x: &'a [f64],
    /// T.
    pub steps: usize,
    /// B.
    pub batch: usize,
    /// `[B]`.
    pub lengths: Option<&'a [usize]>,
    /// `[L·D, B, R]`.
    pub h0: Option<&'a [f64]>,
    /// `[L·D, B, H]`.
    pub c0: Option<&'a [f64]>,
}

/// Outputs of [`stack_forward`]: `y [T, B, D·R]` (zero past each length), `h_n [L·D, B, R]`,
/// `c_n [L·D, B, H]`.
#[derive(Debug, Clone)]
pub struct StackOutput {
    /// `[T, B, D·H]`.
    pub y: Vec<f64>,
    /// `[L·D, B, H]`.
    pub h_n: Vec<f64>,
    /// `[L·D, B, H]`.
    pub c_n: Vec<f64>,
}

/// Gradients of [`stack_backward`]: inputs, initial states, and every parameter by name.
#[derive(Debug, Clone)]
pub struct StackGrads {
    /// `[T, B, I]`.
    pub x: Vec<f64>,
    /// `[L·D, B, H]`.
    pub h0: Vec<f64>,
    /// `[L·D, B, H]`.
    pub c0: Vec<f64>,
    /// PyTorch name → gradient.
    pub params: HashMap<String, Vec<f64>>,
}

fn layer_params(
    shape: &StackShape,
    params: &HashMap<String, Vec<f64>>,
    l: usize,
    d: usize,
) -> LstmParams {
    let suffix = if d == 1 { "_reverse" } else { "" };
    let get = |n: &str| params.get(&format!("{n}_l{l}{suffix}")).cloned();
    let rows = shape.cell.gates() * shape.hidden_size;
    LstmParams {
        input_size: if l == 0 {
            shape.input_size
        } else {
            shape.dirs() * shape.out()
        },
        hidden_size: shape.hidden_size,
        weight_ih: get("weight_ih").expect("weight_ih"),
        weight_hh: get("weight_hh").expect("weight_hh"),
        bias_ih: get("bias_ih").unwrap_or(vec![0.0; rows]),
        bias_hh: get("bias_hh").unwrap_or(vec![0.0; rows]),
        weight_hr: get("weight_hr"),
    }
}

/// Rows `0..len` of sequence `b` of a `[T, B, F]` array, in time order or reversed.
fn rows(a: &[f64], batch: usize, features: usize, b: usize, len: usize, reverse: bool) -> Vec<f64> {
    let mut out = Vec::with_capacity(len * features);
    for s in 0..len {
        let t = if reverse { len - 1 - s } else { s };
        out.extend_from_slice(&a[(t * batch + b) * features..][..features]);
    }
    out
}

/// Runs the stacked model.
pub fn stack_forward(
    shape: &StackShape,
    params: &HashMap<String, Vec<f64>>,
    inputs: &StackInputs<'_>,
) -> StackOutput {
    stack_run(shape, params, inputs, None).0
}

/// Backpropagates `dy [T, B, D·R]`, `dh_n [L·D, B, R]`, `dc_n [L·D, B, H]` through
/// [`stack_forward`].
pub fn stack_backward(
    shape: &StackShape,
    params: &HashMap<String, Vec<f64>>,
    inputs: &StackInputs<'_>,
    dy: &[f64],
    dh_n: Option<&[f64]>,
    dc_n: Option<&[f64]>,
) -> StackGrads {
    stack_run(shape, params, inputs, Some((dy, dh_n, dc_n)))
        .1
        .expect("grads")
}

type OutputGrads<'a> = (&'a [f64], Option<&'a [f64]>, Option<&'a [f64]>);

fn stack_run(
    shape: &StackShape,
    params: &HashMap<String, Vec<f64>>,
    inputs: &StackInputs<'_>,
    grads: Option<OutputGrads<'_>>,
) -> (StackOutput, Option<StackGrads>) {
    let StackInputs {
        x,
        steps,
        batch,
        lengths,
        h0,
        c0,
    } = *inputs;
    let (n_h, r, dirs, layers) = (
        shape.hidden_size,
        shape.out(),
        shape.dirs(),
        shape.num_layers,
    );
    let dh = dirs * r;
    // This sequence's row of a state `[L·D, B, width]`, or zeros.
    let state = |s: Option<&[f64]>, width: usize, ld: usize, b: usize| -> Vec<f64> {
        s.map_or(vec![0.0; width], |s| {
            s[(ld * batch + b) * width..][..width].to_vec()
        })
    };
    let mut out = StackOutput {
        y: vec![0.0; steps * batch * dh],
        h_n: vec![0.0; layers * dirs * batch * r],
        c_n: vec![0.0; layers * dirs * batch * n_h],
    };
    let mut g = StackGrads {
        x: vec![0.0; steps * batch * shape.input_size],
        h0: vec![0.0; layers * dirs * batch * r],
        c0: vec![0.0; layers * dirs * batch * n_h],
        params: HashMap::new(),
    };
    for b in 0..batch {
        let len = lengths.map_or(steps, |l| l[b]);
        // Forward through the layers, keeping each layer's input and per-direction results.
        let mut input = rows(x, batch, shape.input_size, b, len, false); // [len, in]
        let mut saved = Vec::new();
        for l in 0..layers {
            let p: Vec<LstmParams> = (0..dirs)
                .map(|d| layer_params(shape, params, l, d))
                .collect();
            let in_size = p[0].input_size;
            let mut output = vec![0.0; len * dh];
            let mut fwds = Vec::new();
            for d in 0..dirs {
                let ld = l * dirs + d;
                let seq = rows(&input, 1, in_size, 0, len, d == 1);
                let (hs, cs) = (state(h0, r, ld, b), state(c0, n_h, ld, b));
                let f = forward(shape, &p[d], &seq, len, &hs, &cs);
                for s in 0..len {
                    let t = if d == 1 { len - 1 - s } else { s };
                    output[t * dh + d * r..][..r].copy_from_slice(&f.y[s * r..][..r]);
                }
                out.h_n[(ld * batch + b) * r..][..r].copy_from_slice(&f.h_n);
                out.c_n[(ld * batch + b) * n_h..][..n_h].copy_from_slice(&f.c_n);
                fwds.push((seq, f));
            }
            saved.push((p, fwds));
            input = output;
        }
        for t in 0..len {
            out.y[(t * batch + b) * dh..][..dh].copy_from_slice(&input[t * dh..][..dh]);
        }
        let Some((dy, dh_n, dc_n)) = grads else {
            continue;
        };
        // Backward, top layer first: the gradient of a layer's output is its upper layer's dx.
        let mut d_out = rows(dy, batch, dh, b, len, false); // [len, D·H]
        for l in (0..layers).rev() {
            let (p, fwds) = &saved[l];
            let in_size = p[0].input_size;
            let mut d_in = vec![0.0; len * in_size];
            for d in 0..dirs {
                let ld = l * dirs + d;
                let (seq, f) = &fwds[d];
                let mut dseq = vec![0.0; len * r];
                for s in 0..len {
                    let t = if d == 1 { len - 1 - s } else { s };
                    dseq[s * r..][..r].copy_from_slice(&d_out[t * dh + d * r..][..r]);
                }
                let (dhn, dcn) = (state(dh_n, r, ld, b), state(dc_n, n_h, ld, b));
                let gr = backward(shape, &p[d], seq, f, &dseq, &dhn, &dcn);
                for s in 0..len {
                    let t = if d == 1 { len - 1 - s } else { s };
                    for k in 0..in_size {
                        d_in[t * in_size + k] += gr.x[s * in_size + k];
                    }
                }
                g.h0[(ld * batch + b) * r..][..r].copy_from_slice(&gr.h0);
                g.c0[(ld * batch + b) * n_h..][..n_h].copy_from_slice(&gr.c0);
                let suffix = if d == 1 { "_reverse" } else { "" };
                let mut add = |name: &str, v: &[f64]| {
                    let e = g
                        .params
                        .entry(format!("{name}_l{l}{suffix}"))
                        .or_insert_with(|| vec![0.0; v.len()]);
                    e.iter_mut().zip(v).for_each(|(a, b)| *a += b);
                };
                add("weight_ih", &gr.weight_ih);
                add("weight_hh", &gr.weight_hh);
                add("bias_ih", &gr.bias_ih);
                add("bias_hh", &gr.bias_hh);
                if shape.proj_size > 0 {
                    add("weight_hr", &gr.weight_hr);
                }
            }
            d_out = d_in;
        }
        for t in 0..len {
            g.x[(t * batch + b) * shape.input_size..][..shape.input_size]
                .copy_from_slice(&d_out[t * shape.input_size..][..shape.input_size]);
        }
    }
    (out, grads.map(|_| g))
}

fn forward(
    shape: &StackShape,
    p: &LstmParams,
    x: &[f64],
    steps: usize,
    h0: &[f64],
    c0: &[f64],
) -> LstmForward {
    match shape.cell {
        Cell::Lstm => lstm_forward(p, x, steps, 1, Some(h0), Some(c0)),
        Cell::Gru => gru_forward(p, x, steps, 1, Some(h0)),
        Cell::Rnn => rnn_forward(p, x, steps, 1, Some(h0), shape.relu),
    }
}

fn backward(
    shape: &StackShape,
    p: &LstmParams,
    x: &[f64],
    f: &LstmForward,
    dy: &[f64],
    dh_n: &[f64],
    dc_n: &[f64],
) -> LstmGrads {
    match shape.cell {
        Cell::Lstm => lstm_backward(p, x, f, dy, Some(dh_n), Some(dc_n)),
        Cell::Gru => gru_backward(p, x, f, dy, Some(dh_n)),
        Cell::Rnn => rnn_backward(p, x, f, dy, Some(dh_n), shape.relu),
    }
}
