//! Dropout between layers: training only, seeded, and the backward pass uses the forward mask.

mod common;

use common::*;
use wgpu_lstm::{Cell, Lstm, LstmConfig, Nonlinearity, OutputGrads};

const T: usize = 6;
const B: usize = 3;
const I: usize = 4;
const H: usize = 5;

fn model(p: f32) -> Lstm {
    model_of(LstmConfig::new(I, H), p)
}

fn model_of(cell: LstmConfig, p: f32) -> Lstm {
    Lstm::new(gpu(), cell.with_layers(2).with_dropout(p).with_seed(77)).unwrap()
}

fn x() -> wgpu_lstm::Tensor {
    upload(&[T, B, I], &random(T * B * I, 1.0, 78))
}

#[test]
fn dropout_acts_in_training_only() {
    let (with, without) = (model(0.5), model(0.0));
    let x = x();
    let eval = with.forward(&x, None, None).unwrap();
    assert_eq!(
        eval.y.to_vec().unwrap(),
        without.forward(&x, None, None).unwrap().y.to_vec().unwrap()
    );
    let train = with.forward_train(&x, None, None).unwrap();
    assert_ne!(train.y.to_vec().unwrap(), eval.y.to_vec().unwrap());
    // Dropout sits between the layers: layer 0's final state is untouched.
    let (h_train, h_eval) = (train.h_n.to_vec().unwrap(), eval.h_n.to_vec().unwrap());
    assert_eq!(h_train[..B * H], h_eval[..B * H]);
    assert_ne!(h_train[B * H..], h_eval[B * H..]);
    // Each training pass draws a new mask; a fresh model with the same seed draws the same ones.
    let second = with
        .forward_train(&x, None, None)
        .unwrap()
        .y
        .to_vec()
        .unwrap();
    assert_ne!(second, train.y.to_vec().unwrap());
    assert_eq!(
        model(0.5)
            .forward_train(&x, None, None)
            .unwrap()
            .y
            .to_vec()
            .unwrap(),
        train.y.to_vec().unwrap()
    );
}

#[test]
fn dropout_gradient_matches_finite_differences() {
    // Every cell: the mask sits between layers whatever the cell.
    for cell in [
        LstmConfig::new(I, H),
        LstmConfig::new(I, H).with_cell(Cell::Gru),
        LstmConfig::new(I, H).with_proj_size(3),
        LstmConfig::new(I, H)
            .with_cell(Cell::Rnn)
            .with_nonlinearity(Nonlinearity::Relu),
    ] {
        dropout_gradient_of(cell);
    }
}

fn dropout_gradient_of(cell: LstmConfig) {
    // L = Σ dy·y. Fresh models with the same seed draw the same mask on their first training
    // pass, so L(w ± εv) differ only through w. Central differences in f32 with ε = 1e-2 are
    // good to ~1e-3 relative here; a backward pass ignoring the mask is off by O(1).
    let x = x();
    let r = cell.output_size();
    let dy = upload(&[T, B, r], &random(T * B * r, 1.0, 79));
    let dyv = dy.to_vec().unwrap();
    let name = "weight_ih_l0"; // below the dropout: its gradient crosses the mask
    let v = random(cell.gates() * H * I, 1.0, 80);
    let loss = |shift: f32| {
        let m = model_of(cell, 0.5);
        let w: Vec<f32> = m
            .params()
            .get(name)
            .unwrap()
            .iter()
            .zip(&v)
            .map(|(w, v)| w + shift * v)
            .collect();
        m.params().set(name, &w).unwrap();
        let y = m.forward_train(&x, None, None).unwrap().y.to_vec().unwrap();
        y.iter()
            .zip(&dyv)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum::<f64>()
    };
    let eps = 1e-2;
    let numeric = (loss(eps) - loss(-eps)) / (2.0 * eps as f64);
    let m = model_of(cell, 0.5);
    let out = m.forward_train(&x, None, None).unwrap();
    m.backward(out.cache.as_ref().unwrap(), &OutputGrads::dy(&dy), false)
        .unwrap();
    let g = m.params().grad(name).unwrap();
    let analytic: f64 = g
        .iter()
        .zip(&v)
        .map(|(a, b)| (*a as f64) * (*b as f64))
        .sum();
    let rel = (numeric - analytic).abs() / analytic.abs().max(1e-3);
    assert!(
        rel < 1e-2,
        "{cell:?}: directional derivative: numeric {numeric}, analytic {analytic} ({rel:.2e})"
    );
}
