//! Shared by the integration tests: one device per test binary, random data, the reference
//! parameters of a GPU model, and error measures.
#![allow(dead_code)]

pub mod stack;

use rand::{Rng, SeedableRng};
#[cfg(not(target_arch = "wasm32"))]
use std::sync::OnceLock;
#[cfg(not(target_arch = "wasm32"))]
use wgpu_lstm::reference::LstmParams;
#[cfg(not(target_arch = "wasm32"))]
use wgpu_lstm::{Gpu, Lstm, Tensor};

#[cfg(not(target_arch = "wasm32"))]
/// The test binary's device. Panics (fails the test) when there is no adapter: a test that needs
/// a GPU never skips.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::new() {
        Ok(gpu) => {
            eprintln!("adapter: {} ({:?})", gpu.info().name, gpu.info().backend);
            gpu
        }
        Err(e) => panic!("these tests need a GPU adapter: {e}"),
    })
}

/// `n` values uniform in [-scale, scale], seeded.
pub fn random(n: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-scale..=scale)).collect()
}

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

#[cfg(not(target_arch = "wasm32"))]
pub fn upload(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_slice(gpu(), shape, data).expect("upload")
}

#[cfg(not(target_arch = "wasm32"))]
/// The model's current parameters, read back, as the reference's f64 parameters (so the
/// comparison measures the GPU arithmetic, not a difference in weights).
pub fn reference_params(lstm: &Lstm) -> LstmParams {
    let p = lstm.params();
    let get = |name: &str| to_f64(&p.get(name).expect(name));
    LstmParams {
        input_size: lstm.config().input_size,
        hidden_size: lstm.config().hidden_size,
        weight_ih: get("weight_ih_l0"),
        weight_hh: get("weight_hh_l0"),
        bias_ih: get("bias_ih_l0"),
        bias_hh: get("bias_hh_l0"),
        weight_hr: None,
    }
}

/// Largest error of `got` against `want`, relative to max(1, |want|) elementwise: an absolute
/// error for values below 1, a relative one above.
pub fn max_error(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w).abs() / w.abs().max(1.0))
        .fold(0.0, f64::max)
}

/// Largest error of `got` against `want`, relative to the largest magnitude in `want` (for
/// gradients, whose entries span many orders of magnitude).
pub fn max_error_scaled(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let scale = want
        .iter()
        .fold(0.0f64, |m, w| m.max(w.abs()))
        .max(f64::MIN_POSITIVE);
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w).abs() / scale)
        .fold(0.0, f64::max)
}

/// Like [`max_error_scaled`], but relative to at least `floor`: for gradients that may be tiny
/// because an activation saturated, where f32 computes 1 - y² with cancellation (as PyTorch's f32
/// backward does) and only an absolute comparison is meaningful.
pub fn max_error_scaled_floor(got: &[f32], want: &[f64], floor: f64) -> f64 {
    let scale = want.iter().fold(floor, |m, w| m.max(w.abs()));
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w).abs() / scale)
        .fold(0.0, f64::max)
}

pub fn assert_close(name: &str, got: &[f32], want: &[f64], tol: f64) {
    let err = max_error(got, want);
    assert!(
        err <= tol,
        "{name}: max error {err:.3e} > tolerance {tol:.0e}"
    );
}
