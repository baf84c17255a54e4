//! The f64 reference checked against itself: its analytic gradients against central finite
//! differences, and its clipping against the formula. No GPU needed.

use rand::{Rng, SeedableRng};
use wgpu_lstm::reference::{clip_grad_norm, lstm_backward, lstm_forward, LstmParams};

fn random(n: usize, scale: f64, rng: &mut rand::rngs::StdRng) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-scale..=scale)).collect()
}

struct Problem {
    p: LstmParams,
    x: Vec<f64>,
    h0: Vec<f64>,
    c0: Vec<f64>,
    dy: Vec<f64>,
    dh_n: Vec<f64>,
    dc_n: Vec<f64>,
    steps: usize,
    batch: usize,
}

impl Problem {
    fn new(steps: usize, batch: usize, input: usize, hidden: usize, seed: u64) -> Problem {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let h4 = 4 * hidden;
        Problem {
            p: LstmParams {
                input_size: input,
                hidden_size: hidden,
                weight_ih: random(h4 * input, 0.6, &mut rng),
                weight_hh: random(h4 * hidden, 0.6, &mut rng),
                bias_ih: random(h4, 0.5, &mut rng),
                bias_hh: random(h4, 0.5, &mut rng),
            },
            x: random(steps * batch * input, 1.0, &mut rng),
            h0: random(batch * hidden, 0.8, &mut rng),
            c0: random(batch * hidden, 1.5, &mut rng),
            dy: random(steps * batch * hidden, 1.0, &mut rng),
            dh_n: random(batch * hidden, 1.0, &mut rng),
            dc_n: random(batch * hidden, 1.0, &mut rng),
            steps,
            batch,
        }
    }

    /// L = Σ dy·y + Σ dh_n·h_n + Σ dc_n·c_n, whose gradients w.r.t. the outputs are dy, dh_n, dc_n.
    fn loss(&self) -> f64 {
        let f = lstm_forward(
            &self.p,
            &self.x,
            self.steps,
            self.batch,
            Some(&self.h0),
            Some(&self.c0),
        );
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        dot(&f.y, &self.dy) + dot(&f.h_n, &self.dh_n) + dot(&f.c_n, &self.dc_n)
    }
}

/// Central differences with step 1e-6 have truncation error O(ε²·L''') ≈ 1e-12 and rounding
/// error O(1e-16·|L|/ε) ≈ 1e-9 here; analytic and numeric gradients must agree to 1e-6
/// relative to the gradient's largest entry.
#[test]
fn reference_gradients_match_finite_differences() {
    for (case, &(steps, batch, input, hidden)) in [(1, 1, 1, 1), (4, 2, 3, 5), (7, 3, 2, 4)]
        .iter()
        .enumerate()
    {
        let mut pr = Problem::new(steps, batch, input, hidden, 40 + case as u64);
        let fwd = lstm_forward(&pr.p, &pr.x, steps, batch, Some(&pr.h0), Some(&pr.c0));
        let g = lstm_backward(&pr.p, &pr.x, &fwd, &pr.dy, Some(&pr.dh_n), Some(&pr.dc_n));
        type Field = fn(&mut Problem) -> &mut Vec<f64>;
        let fields: [(&str, Field, &[f64]); 7] = [
            ("x", |p| &mut p.x, &g.x),
            ("h0", |p| &mut p.h0, &g.h0),
            ("c0", |p| &mut p.c0, &g.c0),
            ("weight_ih", |p| &mut p.p.weight_ih, &g.weight_ih),
            ("weight_hh", |p| &mut p.p.weight_hh, &g.weight_hh),
            ("bias_ih", |p| &mut p.p.bias_ih, &g.bias_ih),
            ("bias_hh", |p| &mut p.p.bias_hh, &g.bias_hh),
        ];
        let eps = 1e-6;
        for (name, field, analytic) in fields {
            let scale = analytic.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
            for (i, &exact) in analytic.iter().enumerate() {
                let orig = field(&mut pr)[i];
                field(&mut pr)[i] = orig + eps;
                let up = pr.loss();
                field(&mut pr)[i] = orig - eps;
                let down = pr.loss();
                field(&mut pr)[i] = orig;
                let numeric = (up - down) / (2.0 * eps);
                let err = (numeric - exact).abs() / scale;
                assert!(
                    err < 1e-6,
                    "case {case} {name}[{i}]: analytic {exact} numeric {numeric} (error {err:.2e})"
                );
            }
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
