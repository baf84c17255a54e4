//! The f64 reference checked against itself: its analytic gradients against central finite
//! differences, and its clipping against the formula. No GPU needed.

use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use wgpu_lstm::reference::{
    clip_grad_norm, stack_backward, stack_forward, StackInputs, StackShape,
};
use wgpu_lstm::{Cell, LstmConfig, Nonlinearity};

fn random(n: usize, scale: f64, rng: &mut rand::rngs::StdRng) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-scale..=scale)).collect()
}

/// A model of `config` with random parameters, inputs and output gradients.
struct Problem {
    shape: StackShape,
    params: HashMap<String, Vec<f64>>,
    x: Vec<f64>,
    h0: Vec<f64>,
    c0: Vec<f64>,
    dy: Vec<f64>,
    dh_n: Vec<f64>,
    dc_n: Vec<f64>,
    steps: usize,
    batch: usize,
    lengths: Option<Vec<usize>>,
}

impl Problem {
    fn new(
        config: LstmConfig,
        steps: usize,
        batch: usize,
        lengths: Option<Vec<usize>>,
        seed: u64,
    ) -> Problem {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let params = config
            .parameter_shapes()
            .into_iter()
            .map(|(name, shape)| {
                let v = random(shape.iter().product(), 0.6, &mut rng);
                (name, v)
            })
            .collect();
        let (n, r, h) = (
            config.num_layers * config.directions(),
            config.output_size(),
            config.hidden_size,
        );
        let width = config.directions() * r;
        Problem {
            shape: StackShape::of(&config),
            params,
            x: random(steps * batch * config.input_size, 1.0, &mut rng),
            h0: random(n * batch * r, 0.8, &mut rng),
            c0: random(n * batch * h, 1.5, &mut rng),
            dy: random(steps * batch * width, 1.0, &mut rng),
            dh_n: random(n * batch * r, 1.0, &mut rng),
            dc_n: random(n * batch * h, 1.0, &mut rng),
            steps,
            batch,
            lengths,
        }
    }

    fn inputs(&self) -> StackInputs<'_> {
        StackInputs {
            x: &self.x,
            steps: self.steps,
            batch: self.batch,
            lengths: self.lengths.as_deref(),
            h0: Some(&self.h0),
            c0: Some(&self.c0),
        }
    }

    /// L = Σ dy·y + Σ dh_n·h_n + Σ dc_n·c_n, whose gradients w.r.t. the outputs are dy, dh_n, dc_n.
    fn loss(&self) -> f64 {
        let f = stack_forward(&self.shape, &self.params, &self.inputs());
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        dot(&f.y, &self.dy) + dot(&f.h_n, &self.dh_n) + dot(&f.c_n, &self.dc_n)
    }

    /// The value `name` (an input, initial state or parameter) as a mutable vector.
    fn value(&mut self, name: &str) -> &mut Vec<f64> {
        match name {
            "x" => &mut self.x,
            "h0" => &mut self.h0,
            "c0" => &mut self.c0,
            other => self.params.get_mut(other).expect("a parameter"),
        }
    }
}

/// Central differences with step 1e-6 have truncation error O(ε²·L''') ≈ 1e-12 and rounding
/// error O(1e-16·|L|/ε) ≈ 1e-9 here; analytic and numeric gradients must agree to 1e-6
/// relative to the gradient's largest entry. Every cell (the RNN with both nonlinearities, the
/// LSTM with projections), one layer at T = 1, B = 1 and at T = 7, two bidirectional layers
/// with lengths.
#[test]
fn reference_gradients_match_finite_differences() {
    let cells = [
        LstmConfig::new(3, 4),
        LstmConfig::new(3, 5).with_proj_size(2),
        LstmConfig::new(3, 4).with_cell(Cell::Gru),
        LstmConfig::new(3, 4).with_cell(Cell::Rnn),
        LstmConfig::new(3, 4)
            .with_cell(Cell::Rnn)
            .with_nonlinearity(Nonlinearity::Relu),
    ];
    let mut seed = 40;
    for cell in cells {
        let cases = [
            (cell.with_seed(0), 1, 1, None),
            (cell, 7, 3, None),
            (
                cell.with_layers(2).with_bidirectional(true),
                5,
                3,
                Some(vec![5, 2, 4]),
            ),
        ];
        for (config, steps, batch, lengths) in cases {
            seed += 1;
            check_case(
                Problem::new(config, steps, batch, lengths, seed),
                &format!("{config:?} T={steps} B={batch}"),
            );
        }
    }
}

fn check_case(mut pr: Problem, label: &str) {
    let g = stack_backward(
        &pr.shape,
        &pr.params,
        &pr.inputs(),
        &pr.dy,
        Some(&pr.dh_n),
        Some(&pr.dc_n),
    );
    let mut fields: Vec<(String, Vec<f64>)> = vec![("x".into(), g.x), ("h0".into(), g.h0)];
    if pr.shape.cell == Cell::Lstm {
        fields.push(("c0".into(), g.c0));
    }
    let mut names: Vec<&String> = g.params.keys().collect();
    names.sort();
    for name in names {
        fields.push((name.clone(), g.params[name].clone()));
    }
    assert_eq!(
        fields.len() - 2 - usize::from(pr.shape.cell == Cell::Lstm),
        pr.params.len(),
        "{label}: a parameter has no gradient"
    );
    let eps = 1e-6;
    for (name, analytic) in fields {
        let scale = analytic.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        for (i, &exact) in analytic.iter().enumerate() {
            let orig = pr.value(&name)[i];
            pr.value(&name)[i] = orig + eps;
            let up = pr.loss();
            pr.value(&name)[i] = orig - eps;
            let down = pr.loss();
            pr.value(&name)[i] = orig;
            let numeric = (up - down) / (2.0 * eps);
            let err = (numeric - exact).abs() / scale;
            assert!(
                err < 1e-6,
                "{label} {name}[{i}]: analytic {exact} numeric {numeric} (error {err:.2e})"
            );
        }
    }
}

#[test]
fn reference_clip_follows_pytorch_formula() {
    let mut g = vec![3.0, 4.0];
    let out = clip_grad_norm(&mut g, 1.0);
    assert_eq!(out.total_norm, 5.0);
    assert!((out.coef - 1.0 / (5.0 + 1e-6)).abs() < 1e-15);
    assert!((g[0] - 3.0 / (5.0 + 1e-6)).abs() < 1e-15);
    let mut small = vec![0.3, 0.4];
    let out = clip_grad_norm(&mut small, 1.0);
    assert_eq!((out.coef, small[0]), (1.0, 0.3));
    let mut inf = vec![f64::INFINITY, 1.0];
    let out = clip_grad_norm(&mut inf, 1.0);
    assert!(out.total_norm.is_infinite() && out.coef == 0.0 && inf[0].is_nan() && inf[1] == 0.0);
    let mut nan = vec![f64::NAN, 1.0];
    let out = clip_grad_norm(&mut nan, 1.0);
    assert!(out.total_norm.is_nan() && nan.iter().all(|v| v.is_nan()));
}
