//! An application that already owns a wgpu device and queue runs an LSTM through the library,
//! on its own buffers: the input is the application's buffer, the output is copied into another
//! of its buffers, all on the one device.
//!
//!     cargo run --example embed

use std::sync::Arc;
use wgpu::util::DeviceExt;
use wgpu_lstm::{Gpu, Lstm, LstmConfig, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The application's own device, made the usual way with WebGPU's default limits.
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&Default::default()))?;

    // Its data: a sequence of T = 6 steps, batch 2, 3 features, in a buffer it made.
    let (steps, batch, features, hidden) = (6, 2, 3, 8);
    let x: Vec<f32> = (0..steps * batch * features)
        .map(|i| (i as f32 * 0.37).sin())
        .collect();
    let x_buffer = Arc::new(
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("app input"),
            contents: bytemuck::cast_slice(&x),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        }),
    );

    // The engine shares the device: no second device, no copies through the host.
    let gpu = Gpu::from_device(device.clone(), queue.clone());
    let lstm = Lstm::new(&gpu, LstmConfig::new(features, hidden).with_seed(1))?;
    let input = Tensor::from_buffer(&gpu, x_buffer, 0, &[steps, batch, features])?;
    let out = lstm.forward(&input, None, None)?;

    // The application copies the final hidden state into a buffer of its own, on its queue.
    let bytes = (batch * hidden * 4) as u64;
    let app_state = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app state"),
        size: bytes,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    let h_n = &out.h_n;
    encoder.copy_buffer_to_buffer(
        h_n.buffer(),
        (h_n.offset() * 4) as u64,
        &app_state,
        0,
        bytes,
    );
    queue.submit([encoder.finish()]);

    println!("adapter: {}", adapter.get_info().name);
    println!("h_n (batch 0): {:?}", &h_n.to_vec()?[..hidden]);
    Ok(())
}
