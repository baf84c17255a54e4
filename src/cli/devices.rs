//! `wgpu-lstm devices`: the adapters wgpu sees.

use std::process::ExitCode;
use wgpu_lstm::gpu;

pub(crate) fn run() -> wgpu_lstm::Result<ExitCode> {
    let adapters = gpu::list_adapters();
    if adapters.is_empty() {
        return Err(wgpu_lstm::Error::NoAdapter {
            detail: String::new(),
        });
    }
    for a in adapters {
        let (i, l) = (&a.info, &a.limits);
        println!(
            "{} ({:?}, {:?}) driver: {} {}",
            i.name, i.backend, i.device_type, i.driver, i.driver_info
        );
        println!(
            "  max_storage_buffer_binding_size  {}",
            l.max_storage_buffer_binding_size
        );
        println!("  max_buffer_size                  {}", l.max_buffer_size);
        println!(
            "  max_storage_buffers_per_stage    {}",
            l.max_storage_buffers_per_shader_stage
        );
        println!(
            "  max_compute_workgroups_per_dim   {}",
            l.max_compute_workgroups_per_dimension
        );
        println!(
            "  max_compute_invocations_per_wg   {}",
            l.max_compute_invocations_per_workgroup
        );
        println!(
            "  max_compute_workgroup_storage    {}",
            l.max_compute_workgroup_storage_size
        );
        println!(
            "  timestamp queries                {}",
            a.features.contains(wgpu::Features::TIMESTAMP_QUERY)
        );
    }
    Ok(ExitCode::SUCCESS)
}
