//! The wgpu layer: the [`Gpu`] context, device tensors, buffers and the scratch pool, the
//! pipeline cache, error scopes, readback and timing. It knows nothing of the kernels: they
//! name their pipelines and keep their per-device state through [`Gpu::state`].

mod adapter;
mod pipelines;
mod readback;
mod scope;
mod scratch;
mod tensor;
mod timing;

#[cfg(not(target_arch = "wasm32"))]
pub use adapter::list_adapters;
pub use adapter::AdapterSummary;
pub(crate) use pipelines::groups;
pub use pipelines::{Binding, Pipeline, PipelineKey};
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use readback::block;
pub(crate) use tensor::check_shape;
pub use tensor::Tensor;
pub use timing::GpuTimes;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A GPU device and queue with the engine's pipelines, built once per device.
///
/// Cheap to clone (an `Arc` inside); every model made from it shares the device, the pipelines
/// and the scratch pool.
#[derive(Clone)]
pub struct Gpu {
    inner: Arc<GpuInner>,
}

struct GpuInner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    lost: Arc<Mutex<Option<String>>>,
    /// Held around every device operation on backends whose driver context is not shared
    /// between threads (OpenGL): wgpu's GL backend panics when a thread waits more than a few
    /// seconds for the context, which a long submit on a software rasteriser can hold.
    serialize: Option<Mutex<()>>,
    pipelines: Mutex<pipelines::PipelineCache>,
    /// GPU timestamp queries around every compute pass, when enabled (benchmarks).
    timer: Mutex<Option<timing::Timer>>,
    /// Activation buffers reused from call to call (see [`Gpu::scratch`]).
    scratch: Mutex<scratch::ScratchPool>,
    /// Compute dispatches recorded so far (see [`Gpu::dispatch_count`]).
    dispatches: std::sync::atomic::AtomicU64,
    /// Per-device state of the layers above, one value per type (see [`Gpu::state`]).
    states: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Gpu {
    fn wrap(device: wgpu::Device, queue: wgpu::Queue) -> Gpu {
        let lost = Arc::new(Mutex::new(None));
        let flag = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut slot) = flag.lock() {
                *slot = Some(format!("{reason:?}: {message}"));
            }
        });
        let info = device.adapter_info();
        let serialize = (info.backend == wgpu::Backend::Gl).then(|| Mutex::new(()));
        Gpu {
            inner: Arc::new(GpuInner {
                info,
                serialize,
                limits: device.limits(),
                device,
                queue,
                pipelines: Default::default(),
                timer: Mutex::new(None),
                scratch: Default::default(),
                dispatches: Default::default(),
                states: Default::default(),
                lost,
            }),
        }
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// Adapter name, backend, device type and driver.
    pub fn info(&self) -> &wgpu::AdapterInfo {
        &self.inner.info
    }

    /// The limits of the device (what sizes the engine can use).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// Whether two handles share one device context.
    pub fn same(&self, other: &Gpu) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// This device's value of type `T`, made by `init` on first use: how the layers above keep
    /// per-device state (settings, uniform slots) without this layer knowing them.
    pub(crate) fn state<T: Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        let mut states = lock(&self.inner.states);
        let entry = states
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(init()));
        Arc::clone(entry)
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("states are keyed by their type"))
    }

    /// Records one dispatch of `workgroups` into `pass`, counted (every kernel dispatches
    /// through here).
    pub(crate) fn dispatch(&self, pass: &mut wgpu::ComputePass<'_>, workgroups: [u32; 3]) {
        self.inner
            .dispatches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
    }

    /// How many compute dispatches the engine has recorded on this device, by all threads: the
    /// difference around a call is that call's count (the benchmark reports it).
    pub fn dispatch_count(&self) -> u64 {
        self.inner
            .dispatches
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A command encoder.
    pub(crate) fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.inner
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Finishes and submits an encoder inside an error scope: one submit per call.
    pub(crate) fn submit(&self, encoder: wgpu::CommandEncoder) -> crate::Result<()> {
        self.scoped(|| {
            self.inner.queue.submit([encoder.finish()]);
            // What this thread recorded is now queued: its scratch buffers may be reused.
            self.forget_pending();
            Ok(())
        })
    }

    /// Records with a new encoder and submits it, all inside one error scope.
    pub(crate) fn record<T>(
        &self,
        label: &str,
        f: impl FnOnce(&mut wgpu::CommandEncoder) -> crate::Result<T>,
    ) -> crate::Result<T> {
        self.scoped(|| {
            let mut encoder = self.encoder(label);
            let value = f(&mut encoder)?;
            self.submit(encoder)?;
            Ok(value)
        })
    }
}

/// Locks a mutex, recovering the data if another thread panicked while holding it (the data
/// guarded here stays valid whatever a panicking thread did).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
