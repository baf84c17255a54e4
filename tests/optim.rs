//! Optimizer kernels against PyTorch's formulas (the f64 reference), step after step.

mod common;

use common::*;
use wgpu_lstm::reference::{adam_step, sgd_step};
use wgpu_lstm::train::{Optimizer, OptimizerConfig};
use wgpu_lstm::ParamArena;

/// Each step rounds a few f32 operations (|Δp| ≤ lr·O(1)); over 5 steps the parameters stay
/// within a few f32 ulps of |p| ≲ 1 of the f64 reference: 1e-6 absolute.
const TOL: f64 = 1e-6;
const N: usize = 1000;

fn run(config: OptimizerConfig) {
    let arena =
        ParamArena::new(gpu(), &[("w".into(), vec![N - 7]), ("b".into(), vec![7])]).unwrap();
    let p0 = random(N, 1.0, 1);
    arena.set("w", &p0[..N - 7]).unwrap();
    arena.set("b", &p0[N - 7..]).unwrap();
    let mut opt = Optimizer::new(&arena, config).unwrap();
    let mut p = to_f64(&p0);
    let (mut s1, mut s2) = (vec![0.0; N], vec![0.0; N]);
    for step in 1..=5u64 {
        let g = random(N, 1.0, 10 + step);
        arena.set_grad("w", &g[..N - 7]).unwrap();
        arena.set_grad("b", &g[N - 7..]).unwrap();
        opt.step(&arena, None).unwrap();
        let g = to_f64(&g);
        match config {
            OptimizerConfig::Sgd {
                lr,
                momentum,
                dampening,
                weight_decay,
                nesterov,
            } => sgd_step(
                &mut p,
                &g,
                &mut s1,
                step == 1,
                lr as f64,
                momentum as f64,
                dampening as f64,
                weight_decay as f64,
                nesterov,
            ),
            OptimizerConfig::Adam {
                lr,
                betas,
                eps,
                weight_decay,
            }
            | OptimizerConfig::AdamW {
                lr,
                betas,
                eps,
                weight_decay,
            } => adam_step(
                &mut p,
                &g,
                &mut s1,
                &mut s2,
                step,
                lr as f64,
                (betas.0 as f64, betas.1 as f64),
                eps as f64,
                weight_decay as f64,
                matches!(config, OptimizerConfig::AdamW { .. }),
            ),
        }
        let got = [arena.get("w").unwrap(), arena.get("b").unwrap()].concat();
        let err = got
            .iter()
            .zip(&p)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(err <= TOL, "{config:?} step {step}: error {err:.2e}");
    }
    assert_eq!(opt.steps(), 5);
}

#[test]
fn sgd_variants() {
    run(OptimizerConfig::sgd(0.1));
    run(OptimizerConfig::Sgd {
        lr: 0.05,
        momentum: 0.9,
        dampening: 0.1,
        weight_decay: 0.01,
        nesterov: false,
    });
    run(OptimizerConfig::Sgd {
        lr: 0.05,
        momentum: 0.8,
        dampening: 0.0,
        weight_decay: 0.0,
        nesterov: true,
    });
}

#[test]
fn adam_and_adamw() {
    run(OptimizerConfig::adam(0.01));
    run(OptimizerConfig::Adam {
        lr: 0.003,
        betas: (0.8, 0.99),
        eps: 1e-6,
        weight_decay: 0.1,
    });
    run(OptimizerConfig::adamw(0.01));
}

#[test]
fn non_finite_gradients_skip_the_step() {
    let arena = ParamArena::new(gpu(), &[("w".into(), vec![5])]).unwrap();
    arena.set("w", &[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
    let mut opt = Optimizer::new(&arena, OptimizerConfig::adam(0.1)).unwrap();
    arena
        .set_grad("w", &[0.1, f32::NAN, 0.1, 0.1, 0.1])
        .unwrap();
    let clip = arena.clip_grad_norm(1.0, true).unwrap();
    opt.step(&arena, Some(&clip)).unwrap();
    assert_eq!(arena.get("w").unwrap(), [1.0, 2.0, 3.0, 4.0, 5.0]);
    assert!(opt
        .state()
        .unwrap()
        .iter()
        .all(|(_, v)| v.iter().all(|&x| x == 0.0)));
    // A finite gradient then steps normally.
    arena.set_grad("w", &[0.1; 5]).unwrap();
    let clip = arena.clip_grad_norm(1.0, true).unwrap();
    opt.step(&arena, Some(&clip)).unwrap();
    assert!(arena
        .get("w")
        .unwrap()
        .iter()
        .zip([1.0, 2.0, 3.0, 4.0, 5.0])
        .all(|(a, b)| *a < b));
}

#[test]
fn bad_settings_are_errors() {
    let arena = ParamArena::new(gpu(), &[("w".into(), vec![3])]).unwrap();
    assert!(Optimizer::new(&arena, OptimizerConfig::sgd(-1.0)).is_err());
    assert!(Optimizer::new(
        &arena,
        OptimizerConfig::Adam {
            lr: 0.1,
            betas: (1.0, 0.9),
            eps: 1e-8,
            weight_decay: 0.0
        }
    )
    .is_err());
    assert!(Optimizer::new(
        &arena,
        OptimizerConfig::Sgd {
            lr: 0.1,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: true
        }
    )
    .is_err());
}
