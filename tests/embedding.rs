//! The engine inside an application that owns its wgpu device: `Gpu::from_device` with WebGPU's
//! default limits, sizes past a device limit, and wgpu validation errors returned as `Err`.

mod common;

use common::*;
use std::sync::Arc;
use wgpu_lstm::reference::lstm_forward;
use wgpu_lstm::{Error, Gpu, GpuErrorKind, Lstm, LstmConfig, Tensor};

/// A device the way an application would make one: its own instance, adapter and limits.
fn app_device(limits: wgpu::Limits) -> (wgpu::Device, wgpu::Queue) {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
        .expect("these tests need a GPU adapter");
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: limits,
        ..Default::default()
    }))
    .expect("device")
}

#[test]
fn from_device_with_default_limits_matches_reference() {
    let (device, queue) = app_device(wgpu::Limits::default());
    let gpu = Gpu::from_device(device.clone(), queue);
    let (steps, batch, input, hidden) = (5, 3, 7, 13);
    let lstm = Lstm::new(&gpu, LstmConfig::new(input, hidden).with_seed(21)).unwrap();

    // The application's own buffer, holding x, used in place.
    let x = random(steps * batch * input, 1.0, 22);
    let buffer = Arc::new(wgpu::util::DeviceExt::create_buffer_init(
        &device,
        &wgpu::util::BufferInitDescriptor {
            label: Some("app x"),
            contents: bytemuck::cast_slice(&x),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        },
    ));
    let xt = Tensor::from_buffer(&gpu, buffer, 0, &[steps, batch, input]).unwrap();
    let out = lstm.forward(&xt, None, None).unwrap();
    let want = lstm_forward(
        &reference_params(&lstm),
        &to_f64(&x),
        steps,
        batch,
        None,
        None,
    );
    assert_close("embedded y", &out.y.to_vec().unwrap(), &want.y, 1e-5);
}

#[test]
fn sizes_past_a_device_limit_name_the_limit() {
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: 1 << 16,
        ..Default::default()
    };
    let (device, queue) = app_device(limits);
    let gpu = Gpu::from_device(device, queue);
    let lstm = Lstm::new(&gpu, LstmConfig::new(4, 32)).unwrap();
    // T·B·4H·4 bytes = 20·8·128·4 = 80 KiB of gate projections > 64 KiB.
    let x = Tensor::from_slice(&gpu, &[20, 8, 4], &[0.0; 640]).unwrap();
    match lstm.forward(&x, None, None) {
        Err(Error::Limit {
            limit,
            needed,
            available,
            ..
        }) => {
            assert_eq!(limit, "max_storage_buffer_binding_size");
            assert_eq!(available, 1 << 16);
            assert!(needed > available);
        }
        other => panic!("expected a limit error, got {:?}", other.err()),
    }
    // A parameter arena past the limit fails when the model is made.
    let err = Lstm::new(&gpu, LstmConfig::new(200, 200))
        .err()
        .expect("arena too large");
    assert!(
        err.to_string().contains("max_storage_buffer_binding_size"),
        "{err}"
    );
}

#[test]
fn too_few_storage_buffers_per_stage_name_the_limit() {
    // The step kernels bind more than 4 storage buffers (GLES 3.1's minimum): checked before
    // the pipeline is built, so the error names the limit.
    let limits = wgpu::Limits {
        max_storage_buffers_per_shader_stage: 4,
        ..Default::default()
    };
    let (device, queue) = app_device(limits);
    let gpu = Gpu::from_device(device, queue);
    let lstm = Lstm::new(&gpu, LstmConfig::new(3, 5)).unwrap();
    let x = Tensor::from_slice(&gpu, &[2, 1, 3], &[0.1; 6]).unwrap();
    match lstm.forward(&x, None, None) {
        Err(Error::Limit {
            limit, available, ..
        }) => {
            assert_eq!(limit, "max_storage_buffers_per_shader_stage");
            assert_eq!(available, 4);
        }
        other => panic!("expected a limit error, got {:?}", other.err()),
    }
}

#[test]
fn wgpu_validation_errors_come_back_as_err() {
    // The step kernels' workgroups have more than 32 invocations; a device allowing 32 cannot
    // build them. wgpu reports that as a validation error, which must reach the caller instead
    // of panicking.
    let limits = wgpu::Limits {
        max_compute_invocations_per_workgroup: 32,
        max_compute_workgroup_size_x: 32,
        ..Default::default()
    };
    let (device, queue) = app_device(limits);
    let gpu = Gpu::from_device(device, queue);
    let lstm = Lstm::new(&gpu, LstmConfig::new(3, 5)).unwrap();
    let x = Tensor::from_slice(&gpu, &[2, 1, 3], &[0.1; 6]).unwrap();
    match lstm.forward(&x, None, None) {
        Err(Error::Gpu {
            kind: GpuErrorKind::Validation,
            message,
        }) => {
            assert!(!message.is_empty())
        }
        other => panic!("expected a validation error, got {:?}", other.err()),
    }
}

#[test]
fn tensors_from_another_context_are_rejected() {
    let (device, queue) = app_device(Default::default());
    let other = Gpu::from_device(device, queue);
    let x = Tensor::from_slice(&other, &[1, 1, 2], &[0.0, 1.0]).unwrap();
    let lstm = Lstm::new(gpu(), LstmConfig::new(2, 2)).unwrap();
    assert!(matches!(
        lstm.forward(&x, None, None),
        Err(Error::Invalid(_))
    ));
}

/// Without IMMEDIATES (a device made with default features) the timestep index comes from
/// uniform slots at dynamic offsets, including the backward pass's dh0 slot; both tilings and
/// H > 64 (several narrow workgroups) on both cells, against the f64 reference.
#[test]
fn dynamic_offset_path_matches_reference_forward_and_backward() {
    use std::collections::HashMap;
    use wgpu_lstm::reference::{stack_backward, stack_forward, StackInputs, StackShape};
    use wgpu_lstm::{Cell, ForwardOptions, OutputGrads};
    let (device, queue) = app_device(wgpu::Limits::default());
    assert!(!device.features().contains(wgpu::Features::IMMEDIATES));
    let gpu = Gpu::from_device(device, queue);
    for (cell, batch, hidden) in [(Cell::Lstm, 3, 70), (Cell::Lstm, 6, 9), (Cell::Rnn, 2, 70)] {
        let (steps, input) = (5, 4);
        let c = LstmConfig::new(input, hidden)
            .with_cell(cell)
            .with_layers(2)
            .with_bidirectional(true)
            .with_seed(7);
        let lstm = Lstm::new(&gpu, c).unwrap();
        let lengths: Vec<usize> = (0..batch).map(|b| 1 + (b * 3) % steps).collect();
        let (x, dy) = (
            random(steps * batch * input, 1.0, 1),
            random(steps * batch * 2 * hidden, 1.0, 2),
        );
        let xt = Tensor::from_slice(&gpu, &[steps, batch, input], &x).unwrap();
        let dyt = Tensor::from_slice(&gpu, &[steps, batch, 2 * hidden], &dy).unwrap();
        let out = lstm
            .run(
                &xt,
                &ForwardOptions {
                    lengths: Some(&lengths),
                    train: true,
                    ..Default::default()
                },
            )
            .unwrap();
        let back = lstm
            .backward(
                out.cache.as_ref().unwrap(),
                &OutputGrads {
                    dy: Some(&dyt),
                    ..Default::default()
                },
                false,
            )
            .unwrap();
        let shape = StackShape::of(lstm.config());
        let p: HashMap<String, Vec<f64>> = lstm
            .params()
            .views()
            .iter()
            .map(|v| (v.name.clone(), to_f64(&lstm.params().get(&v.name).unwrap())))
            .collect();
        let xr = to_f64(&x);
        let inputs = StackInputs {
            x: &xr,
            steps,
            batch,
            lengths: Some(&lengths),
            h0: None,
            c0: None,
        };
        let want = stack_forward(&shape, &p, &inputs);
        assert_close(
            &format!("{cell:?} B={batch} y"),
            &out.y.to_vec().unwrap(),
            &want.y,
            1e-5,
        );
        let g = stack_backward(&shape, &p, &inputs, &to_f64(&dy), None, None);
        // Gradients as in tests/robustness.rs (absolute below 1e-3, where tanh saturates).
        let err = max_error_scaled_floor(&back.dh0.to_vec().unwrap(), &g.h0, 1e-3);
        assert!(err <= 1e-4, "{cell:?} B={batch} dh0: {err:.2e}");
        for v in lstm.params().views() {
            let err = max_error_scaled_floor(
                &lstm.params().grad(&v.name).unwrap(),
                &g.params[&v.name],
                1e-3,
            );
            assert!(err <= 1e-4, "{cell:?} B={batch} {}: {err:.2e}", v.name);
        }
    }
}
