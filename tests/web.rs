//! The engine in a real browser: headless Chromium's WebGPU (SwiftShader in CI), through wasm.
//! Run by `bash scripts/test-web.sh`. The same f64 reference checks as the native tests, every
//! kernel variant through Chromium's own WGSL compiler (Tint), and the async API the web uses.
//! No adapter means failure, not a skip.
#![cfg(target_arch = "wasm32")]

mod common;

use common::stack::{check_within_async, Case, FORWARD_TOL, GRAD_TOL};
use common::{max_error_scaled, random, to_f64};
use std::cell::RefCell;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};
use wgpu_lstm::io::{parse_tensors, serialize_tensors};
use wgpu_lstm::lab::{per_step_rate, run_lab_async, LabConfig};
use wgpu_lstm::reference::{adam_step, clip_grad_norm};
use wgpu_lstm::train::{Optimizer, OptimizerConfig};
use wgpu_lstm::{Cell, Gpu, Lstm, LstmConfig, Nonlinearity, OutputGrads, Recurrence, Tensor};

wasm_bindgen_test_configure!(run_in_browser);

thread_local! {
    static GPU: RefCell<Option<Gpu>> = const { RefCell::new(None) };
}

/// The page's device, opened once. Panics (fails the test) without a WebGPU adapter.
async fn gpu() -> Gpu {
    if let Some(gpu) = GPU.with_borrow(|g| g.clone()) {
        return gpu;
    }
    let gpu = match Gpu::new_async().await {
        Ok(gpu) => gpu,
        Err(e) => panic!("these tests need a WebGPU adapter in the browser: {e}"),
    };
    console_log!("adapter: {:?}", gpu.info());
    // SwiftShader is a CPU adapter, where `auto` takes the sequence kernel: these tests run
    // the step kernels, and the_sequence_kernel_matches_the_reference the other one.
    gpu.set_recurrence(Recurrence::Step);
    GPU.with_borrow_mut(|g| *g = Some(gpu.clone()));
    gpu
}

/// Every cell of the family, small and not a multiple of any tile.
fn cells() -> [LstmConfig; 5] {
    [
        LstmConfig::new(3, 7),
        LstmConfig::new(3, 6).with_proj_size(4),
        LstmConfig::new(3, 7).with_cell(Cell::Gru),
        LstmConfig::new(3, 7).with_cell(Cell::Rnn),
        LstmConfig::new(3, 7)
            .with_cell(Cell::Rnn)
            .with_nonlinearity(Nonlinearity::Relu),
    ]
}

#[wasm_bindgen_test]
async fn the_adapter_is_the_browsers_webgpu() {
    let gpu = gpu().await;
    assert_eq!(gpu.info().backend, wgpu::Backend::BrowserWebGpu);
    // WebGPU has no immediates: the recurrent kernels take their step index from uniform slots.
    assert!(!gpu.device().features().contains(wgpu::Features::IMMEDIATES));
}

/// Every WGSL module the engine can build, compiled by Tint, Chromium's WGSL front end
/// (stricter than naga in places). Variants that read immediates are for native devices only.
#[wasm_bindgen_test]
async fn tint_accepts_every_kernel_variant() {
    let gpu = gpu().await;
    let variants: Vec<_> = wgpu_lstm::kernels::shader_variants()
        .into_iter()
        .filter(|v| !v.immediates)
        .collect();
    let mut rejected = Vec::new();
    for v in &variants {
        let module = gpu
            .device()
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&v.name),
                source: wgpu::ShaderSource::Wgsl(v.source.as_str().into()),
            });
        let info = module.get_compilation_info().await;
        let errors: Vec<String> = info
            .messages
            .iter()
            .filter(|m| m.message_type == wgpu::CompilationMessageType::Error)
            .map(|m| m.message.clone())
            .collect();
        if !errors.is_empty() {
            rejected.push(format!("{}: {}", v.name, errors.join("; ")));
        }
    }
    console_log!("Tint compiled {} kernel variants", variants.len());
    assert!(
        rejected.is_empty(),
        "Tint rejected:\n{}",
        rejected.join("\n")
    );
}

/// Forward and backward of every cell against the f64 reference, at T = 5, B = 3 and at
/// T = 1, B = 1, with the native tests' tolerances (the arithmetic is the same f32 WGSL).
#[wasm_bindgen_test]
async fn every_cell_forward_and_backward() {
    let gpu = gpu().await;
    for (i, config) in cells().into_iter().enumerate() {
        for (steps, batch) in [(5, 3), (1, 1)] {
            let case = Case {
                config,
                steps,
                batch,
                lengths: None,
            };
            let seed = 700 + 10 * i as u64 + steps as u64;
            check_within_async(&gpu, &case, seed, (FORWARD_TOL, GRAD_TOL)).await;
        }
    }
}

#[wasm_bindgen_test]
async fn two_bidirectional_layers_with_lengths() {
    let gpu = gpu().await;
    for (i, cell) in [Cell::Lstm, Cell::Gru, Cell::Rnn].into_iter().enumerate() {
        let config = LstmConfig::new(3, 9)
            .with_cell(cell)
            .with_layers(2)
            .with_bidirectional(true);
        let case = Case {
            config,
            steps: 6,
            batch: 3,
            lengths: Some(vec![6, 1, 4]),
        };
        check_within_async(&gpu, &case, 760 + i as u64, (FORWARD_TOL, GRAD_TOL)).await;
    }
}

/// The whole-sequence kernel (one dispatch per layer and direction) through Tint as well.
#[wasm_bindgen_test]
async fn the_sequence_kernel_matches_the_reference() {
    // A device of its own, so the setting does not leak into the other tests.
    let gpu = Gpu::new_async().await.expect("a WebGPU adapter");
    gpu.set_recurrence(Recurrence::Sequence);
    for (i, config) in cells().into_iter().enumerate() {
        let case = Case {
            config: config.with_bidirectional(true),
            steps: 7,
            batch: 2,
            lengths: Some(vec![7, 3]),
        };
        check_within_async(&gpu, &case, 780 + i as u64, (FORWARD_TOL, GRAD_TOL)).await;
    }
}

/// Global-norm clipping of every cell's real gradients against PyTorch's formula: norm,
/// coefficient and every clipped value (tolerances of tests/clip.rs: the norm is an f32 tree
/// sum, relative error ≲ log2(n)·2⁻²⁴ ≪ 1e-6).
#[wasm_bindgen_test]
async fn clipping_every_cell() {
    let gpu = gpu().await;
    for (i, config) in cells().into_iter().enumerate() {
        let (steps, batch) = (4, 2);
        let lstm = Lstm::new(&gpu, config.with_seed(800 + i as u64)).unwrap();
        let x = random(steps * batch * config.input_size, 1.0, 810 + i as u64);
        let x = Tensor::from_slice(&gpu, &[steps, batch, config.input_size], &x).unwrap();
        let out = lstm.forward_train(&x, None, None).unwrap();
        let width = config.directions() * config.output_size();
        let dy = random(steps * batch * width, 1.0, 820 + i as u64);
        let dy = Tensor::from_slice(&gpu, &[steps, batch, width], &dy).unwrap();
        let grads = OutputGrads {
            dy: Some(&dy),
            ..Default::default()
        };
        lstm.backward(out.cache.as_ref().unwrap(), &grads, false)
            .unwrap();
        let arena = lstm.params();
        let names = arena.names();
        let mut want = Vec::new();
        for name in &names {
            want.extend(to_f64(&arena.grad_async(name).await.unwrap()));
        }
        let mut unclipped = want.clone();
        let r = clip_grad_norm(&mut unclipped, f64::MAX);
        let max_norm = (r.total_norm / 4.0) as f32;
        let r = clip_grad_norm(&mut want, max_norm as f64);
        let clip = arena.clip_grad_norm(max_norm, false).unwrap();
        let norm = clip.total_norm_async().await.unwrap() as f64;
        let coef = clip.coefficient_async().await.unwrap() as f64;
        let label = config.cell.name();
        assert!(
            (norm - r.total_norm).abs() <= 1e-6 * r.total_norm,
            "{label}: norm {norm} vs {}",
            r.total_norm
        );
        assert!(
            (coef - r.coef).abs() <= 1e-6 * r.coef,
            "{label}: coefficient {coef} vs {}",
            r.coef
        );
        let mut got = Vec::new();
        for name in &names {
            got.extend(arena.grad_async(name).await.unwrap());
        }
        let err = max_error_scaled(&got, &want);
        assert!(err <= 1e-6, "{label}: clipped gradients off by {err:.2e}");
    }
}

/// One Adam step on the GPU against the f64 formula (tests/optim.rs: a few f32 roundings of
/// |Δp| ≤ lr, 1e-6 absolute).
#[wasm_bindgen_test]
async fn one_adam_step() {
    let gpu = gpu().await;
    let n = 1001;
    let arena = wgpu_lstm::ParamArena::new(&gpu, &[("w".into(), vec![n])]).unwrap();
    let (p0, g) = (random(n, 1.0, 900), random(n, 1.0, 901));
    arena.set("w", &p0).unwrap();
    arena.set_grad("w", &g).unwrap();
    let config = OptimizerConfig::Adam {
        lr: 0.01,
        betas: (0.9, 0.999),
        eps: 1e-8,
        weight_decay: 0.0,
    };
    let mut optimizer = Optimizer::new(&arena, config).unwrap();
    optimizer.step(&arena, None).unwrap();
    let (mut p, mut m, mut v) = (to_f64(&p0), vec![0.0; n], vec![0.0; n]);
    adam_step(
        &mut p,
        &to_f64(&g),
        &mut m,
        &mut v,
        1,
        0.01,
        (0.9, 0.999),
        1e-8,
        0.0,
        false,
    );
    let got = arena.get_async("w").await.unwrap();
    let err = got
        .iter()
        .zip(&p)
        .map(|(a, b)| (*a as f64 - b).abs())
        .fold(0.0, f64::max);
    assert!(err <= 1e-6, "Adam step off by {err:.2e}");
}

/// A state dict saved to safetensors bytes and loaded back gives a model with the same
/// parameters and the same outputs, bit for bit (the web has no files: bytes in and out).
#[wasm_bindgen_test]
async fn state_dict_round_trip_through_bytes() {
    let gpu = gpu().await;
    let config = LstmConfig::new(4, 5).with_layers(2).with_seed(950);
    let lstm = Lstm::new(&gpu, config).unwrap();
    let bytes = serialize_tensors(&lstm.state_dict_async().await.unwrap()).unwrap();
    let tensors = parse_tensors(&bytes, "bytes").unwrap();
    let loaded = Lstm::from_state_dict(&gpu, &tensors, false).unwrap();
    assert_eq!(
        loaded.params().all_params_async().await.unwrap(),
        lstm.params().all_params_async().await.unwrap()
    );
    let x = Tensor::from_slice(&gpu, &[3, 2, 4], &random(24, 1.0, 951)).unwrap();
    let a = lstm.forward(&x, None, None).unwrap().y.to_vec_async().await;
    let b = loaded
        .forward(&x, None, None)
        .unwrap()
        .y
        .to_vec_async()
        .await;
    assert_eq!(a.unwrap(), b.unwrap());
}

/// A bad shape is an `Err` naming the tensor, in the browser as natively.
#[wasm_bindgen_test]
async fn bad_input_is_an_error() {
    let gpu = gpu().await;
    let lstm = Lstm::new(&gpu, LstmConfig::new(4, 5)).unwrap();
    let x = Tensor::from_slice(&gpu, &[3, 2, 3], &random(18, 1.0, 960)).unwrap();
    let message = lstm
        .forward(&x, None, None)
        .err()
        .expect("a shape error")
        .to_string();
    assert!(
        message.contains("`x`") && message.contains("[3, 2, 3]"),
        "{message}"
    );
}

/// The gradient-flow lab as the lab page runs it (T = 100, H = 32), timed: one redraw of the
/// page. Bigger forget bias keeps the LSTM's explicit path t₀ alive (rate closer to 1).
#[wasm_bindgen_test]
async fn the_lab_runs_and_the_forget_gate_keeps_the_path() {
    let gpu = gpu().await;
    let start = js_sys::Date::now();
    let closed = run_lab_async(&gpu, &LabConfig::default()).await.unwrap();
    let elapsed = js_sys::Date::now() - start;
    console_log!("one gradient-flow lab run (T = 100, H = 32): {elapsed:.0} ms");
    let open = run_lab_async(
        &gpu,
        &LabConfig {
            forget_bias: 5.0,
            ..LabConfig::default()
        },
    )
    .await
    .unwrap();
    let rate = |r: &wgpu_lstm::lab::LabResult| per_step_rate(&r.lstm.path_norm);
    assert!(
        (1.0 - rate(&open)).abs() < (1.0 - rate(&closed)).abs(),
        "t₀ rate with forget bias 5: {}, with 0: {}",
        rate(&open),
        rate(&closed)
    );
}

/// A lost device (destroyed here, as a driver reset would) makes every later call an `Err`,
/// never a hang: the map of a readback is rejected, the loss callback is recorded.
#[wasm_bindgen_test]
async fn a_lost_device_is_an_error_not_a_hang() {
    let gpu = Gpu::new_async().await.expect("a WebGPU adapter");
    let lstm = Lstm::new(&gpu, LstmConfig::new(2, 3)).unwrap();
    let x = Tensor::from_slice(&gpu, &[2, 1, 2], &[0.5; 4]).unwrap();
    gpu.device().destroy();
    let outcome = match lstm.forward(&x, None, None) {
        Ok(out) => out.y.to_vec_async().await.map(|_| ()),
        Err(e) => Err(e),
    };
    let message = outcome
        .expect_err("an error after the device was lost")
        .to_string();
    console_log!("after the device was lost: {message}");
}
