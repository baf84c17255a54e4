//! Finding an adapter and opening a device on it.

use super::Gpu;
use crate::error::{Error, Result};
use std::sync::Arc;

/// What `wgpu-lstm devices` prints about an adapter.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// wgpu's adapter information (name, backend, device type, driver).
    pub info: wgpu::AdapterInfo,
    /// The adapter's limits.
    pub limits: wgpu::Limits,
    /// The adapter's optional features.
    pub features: wgpu::Features,
}

/// An instance on `backends`, or on those named by `WGPU_BACKEND` (e.g. `vulkan`, `gl`,
/// `metal`, `dx12`) when it is set.
fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    // Validation layers are for debugging wgpu itself; our errors come from wgpu's own checks.
    desc.flags = wgpu::InstanceFlags::empty();
    wgpu::Instance::new(desc.with_env())
}

/// Lists every adapter wgpu can see (honouring `WGPU_BACKEND`).
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters() -> Vec<AdapterSummary> {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    pollster::block_on(instance(backends).enumerate_adapters(backends))
        .into_iter()
        .map(|a| AdapterSummary {
            info: a.get_info(),
            limits: a.limits(),
            features: a.features(),
        })
        .collect()
}

/// The adapter whose name contains `name`, or the high-performance one, on `backends`.
async fn find_adapter(backends: wgpu::Backends, name: Option<&str>) -> Result<wgpu::Adapter> {
    let instance = instance(backends);
    match name {
        Some(name) => {
            let wanted = name.to_lowercase();
            let adapters = instance.enumerate_adapters(backends).await;
            let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
            adapters
                .into_iter()
                .find(|a| a.get_info().name.to_lowercase().contains(&wanted))
                .ok_or_else(|| Error::NoAdapter {
                    detail: format!(" whose name contains `{name}` (found: {names:?})"),
                })
        }
        None => instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::from_env()
                    .unwrap_or(wgpu::PowerPreference::HighPerformance),
                force_fallback_adapter: false,
                compatible_surface: None,
                // We want the adapter's real limits, not fingerprint-resistant buckets.
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| Error::NoAdapter {
                detail: format!(" ({e})"),
            }),
    }
}

impl Gpu {
    /// Opens the best adapter: `WGPU_ADAPTER_NAME` (a case-insensitive substring of the name) if
    /// set, else the high-performance one, on the backends in `WGPU_BACKEND` (all if unset).
    /// The device gets the adapter's real limits, not WebGPU's defaults.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Gpu> {
        super::readback::block(Gpu::new_async())
    }

    /// [`Gpu::new`] as a future: the form the web uses (the browser's WebGPU adapter).
    pub async fn new_async() -> Result<Gpu> {
        let name = std::env::var("WGPU_ADAPTER_NAME").ok();
        Gpu::with_adapter_async(name.as_deref()).await
    }

    /// Like [`Gpu::new`], but picks the adapter whose name contains `name` (case-insensitive).
    ///
    /// Without `WGPU_BACKEND`, the primary backends (Vulkan, Metal, DX12) are tried first and
    /// OpenGL only when they offer no adapter.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_adapter(name: Option<&str>) -> Result<Gpu> {
        super::readback::block(Gpu::with_adapter_async(name))
    }

    /// [`Gpu::with_adapter`] as a future.
    pub async fn with_adapter_async(name: Option<&str>) -> Result<Gpu> {
        let adapter = match wgpu::Backends::from_env() {
            Some(backends) => find_adapter(backends, name).await?,
            None => match find_adapter(wgpu::Backends::PRIMARY, name).await {
                Ok(adapter) => adapter,
                Err(_) => find_adapter(wgpu::Backends::all(), name).await?,
            },
        };
        // Optional features the engine uses when present: timestamps for benchmarks, immediates
        // for the per-step index of the recurrent kernels.
        let features =
            adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::IMMEDIATES);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgpu-lstm"),
                required_features: features,
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::RequestDevice(e.to_string()))?;
        // We own this device: errors outside our scopes must not abort the process.
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            eprintln!("wgpu-lstm: uncaptured GPU error: {e}");
        }));
        Ok(Gpu::wrap(device, queue))
    }

    /// Embeds the engine in an application that already owns a wgpu device and queue. Works with
    /// any limits the device was made with (WebGPU's defaults included); sizes beyond them are
    /// reported as [`Error::Limit`]. The application's uncaptured-error handler is left alone:
    /// the engine captures its own errors with error scopes.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Gpu {
        Gpu::wrap(device, queue)
    }
}
