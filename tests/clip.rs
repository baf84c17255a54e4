//! The clipping kernel against PyTorch's formula (the f64 reference), edge cases included.

mod common;

use common::*;
use wgpu_lstm::reference::clip_grad_norm;
use wgpu_lstm::{Error, ParamArena};

/// The norm is a sum of n squares accumulated in f32 (scaled, in a fixed tree): relative error
/// about log2(n)·2⁻²⁴ plus the per-element rounding, well under 1e-6 for n ≤ 10⁶.
const NORM_TOL: f64 = 1e-6;

/// An arena with two tensors holding `a` and `b`.
fn arena(a: &[f32], b: &[f32]) -> ParamArena {
    let arena = ParamArena::new(
        gpu(),
        &[
            ("a".to_string(), vec![a.len()]),
            ("b".to_string(), vec![b.len()]),
        ],
    )
    .unwrap();
    arena.set_grad("a", a).unwrap();
    arena.set_grad("b", b).unwrap();
    arena
}

/// Clips on the GPU and in the reference; compares norm, coefficient and every clipped value.
fn check(a: &[f32], b: &[f32], max_norm: f32) -> (f32, f32) {
    let arena = arena(a, b);
    let clip = arena.clip_grad_norm(max_norm, false).unwrap();
    let (norm, coef) = (clip.total_norm().unwrap(), clip.coefficient().unwrap());
    let mut want: Vec<f64> = to_f64(a).into_iter().chain(to_f64(b)).collect();
    let r = clip_grad_norm(&mut want, max_norm as f64);
    let rel = |x: f64, y: f64| if x == y { 0.0 } else { (x - y).abs() / y.abs() };
    assert!(
        rel(norm as f64, r.total_norm) <= NORM_TOL,
        "norm {norm} vs {}",
        r.total_norm
    );
    assert!(
        rel(coef as f64, r.coef) <= NORM_TOL,
        "coef {coef} vs {}",
        r.coef
    );
    let got: Vec<f32> = [arena.grad("a").unwrap(), arena.grad("b").unwrap()].concat();
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= 2e-7 * w.abs().max(1e-30),
            "element {i}: {g} vs {w}"
        );
    }
    (norm, coef)
}

#[test]
fn below_at_and_above_max_norm() {
    let a = random(1000, 0.01, 1);
    let b = random(37, 0.01, 2);
    let (norm, coef) = check(&a, &b, 10.0);
    assert_eq!(coef, 1.0, "norm {norm} is below max_norm: nothing changes");
    // At max_norm: PyTorch still multiplies by max_norm / (norm + 1e-6), slightly below 1.
    let (_, coef_at) = check(&a, &b, norm);
    assert!(coef_at < 1.0);
    let (_, coef_above) = check(&a, &b, norm / 4.0);
    assert!((coef_above - 0.25).abs() < 1e-4);
}

#[test]
fn large_arena_uses_every_workgroup() {
    // More elements than the first pass's 1024 workgroups × 256 invocations: the grid stride
    // loop runs more than once.
    let a = random(300_001, 1.0, 3);
    let b = random(5, 1000.0, 4);
    check(&a, &b, 1.0);
}

#[test]
fn single_huge_element_does_not_overflow() {
    // 1e30² overflows f32; the scaled sum of squares keeps the norm finite, like PyTorch's CPU
    // norm (which accumulates in f64).
    let mut a = random(100, 1.0, 5);
    a[42] = 1e30;
    let (norm, coef) = check(&a, &[1.0, -2.0], 5.0);
    assert!(
        (norm - 1e30).abs() / 1e30 < 1e-6 && coef > 0.0,
        "norm {norm}, coef {coef}"
    );
}

#[test]
fn all_zero_gradients() {
    let (norm, coef) = check(&[0.0; 300], &[0.0; 3], 1.0);
    assert_eq!((norm, coef), (0.0, 1.0));
}

#[test]
fn nan_and_inf_follow_pytorch() {
    // NaN: the norm is NaN and so is every gradient afterwards.
    let arena = arena(&[1.0, f32::NAN, 2.0], &[3.0]);
    let clip = arena.clip_grad_norm(1.0, false).unwrap();
    assert!(clip.total_norm().unwrap().is_nan());
    assert!(arena
        .grad("a")
        .unwrap()
        .iter()
        .chain(&arena.grad("b").unwrap())
        .all(|v| v.is_nan()));

    // Inf: norm Inf, coefficient 0: finite gradients become 0, the infinite one NaN (Inf·0).
    let arena = arena_inf();
    let clip = arena.clip_grad_norm(1.0, false).unwrap();
    assert_eq!(clip.total_norm().unwrap(), f32::INFINITY);
    assert_eq!(clip.coefficient().unwrap(), 0.0);
    let a = arena.grad("a").unwrap();
    assert!(a[0] == 0.0 && a[1].is_nan() && a[2] == 0.0, "{a:?}");
}

fn arena_inf() -> ParamArena {
    arena(&[1.0, f32::NEG_INFINITY, 2.0], &[3.0])
}

#[test]
fn error_if_nonfinite_leaves_gradients_untouched() {
    for (a, what) in [
        (vec![1.0, f32::NAN, 2.0], "NaN"),
        (vec![1.0, f32::INFINITY, 2.0], "inf"),
    ] {
        let arena = arena(&a, &[3.0]);
        let clip = arena.clip_grad_norm(1.0, true).unwrap();
        match clip.total_norm() {
            Err(Error::NonFiniteNorm(n)) => assert!(!n.is_finite()),
            other => panic!("{what}: expected NonFiniteNorm, got {other:?}"),
        }
        let after = arena.grad("a").unwrap();
        assert!(
            after[0] == 1.0 && after[2] == 2.0 && arena.grad("b").unwrap() == [3.0],
            "{what}: {after:?}"
        );
    }
    // Finite gradients clip as usual with the flag set.
    let arena = arena(&[3.0], &[4.0]);
    assert_eq!(
        arena
            .clip_grad_norm(1.0, true)
            .unwrap()
            .total_norm()
            .unwrap(),
        5.0
    );
}

#[test]
fn clipping_is_deterministic() {
    let a = random(123_457, 1.0, 6);
    let norms: Vec<u32> = (0..3)
        .map(|_| {
            arena(&a, &[0.5])
                .clip_grad_norm(1.0, false)
                .unwrap()
                .total_norm()
                .unwrap()
                .to_bits()
        })
        .collect();
    assert!(norms.windows(2).all(|w| w[0] == w[1]), "{norms:?}");
}

#[test]
fn bad_max_norm_is_an_error() {
    let arena = arena(&[1.0], &[1.0]);
    for bad in [f32::NAN, -1.0, f32::INFINITY] {
        assert!(
            matches!(arena.clip_grad_norm(bad, false), Err(Error::Invalid(_))),
            "{bad}"
        );
    }
}
