//! The wgpu layer: the [`Gpu`] context, device tensors, readback and error capture.

mod tensor;

pub(crate) use tensor::check_shape;
pub use tensor::Tensor;

use crate::error::{Error, Result};
use crate::kernels::{Kernels, StepTiling};
use std::sync::{Arc, Mutex};

/// A GPU device and queue with the engine's pipelines, built once per device.
///
/// Cheap to clone (an `Arc` inside); every model made from it shares the device, the pipelines
/// and the per-timestep uniform slots.
#[derive(Clone)]
pub struct Gpu {
    inner: Arc<GpuInner>,
}

struct GpuInner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    kernels: Mutex<Option<Arc<Kernels>>>,
    slots: Mutex<Option<Arc<StepSlots>>>,
    lost: Arc<Mutex<Option<String>>>,
    /// GPU timestamp queries around every compute pass, when enabled (benchmarks).
    timer: Mutex<Option<Timer>>,
    /// Held around every device operation on backends whose driver context is not shared
    /// between threads (OpenGL): wgpu's GL backend panics when a thread waits more than a few
    /// seconds for the context, which a long submit on a software rasteriser can hold.
    serialize: Option<Mutex<()>>,
    /// The tiling of the recurrent step kernels (`WGPU_LSTM_TILING`, else automatic).
    step_tiling: Mutex<StepTiling>,
    /// Activation buffers reused from call to call (see [`Gpu::scratch`]).
    scratch: Mutex<ScratchPool>,
    /// Compute dispatches recorded so far (see [`Gpu::dispatch_count`]).
    dispatches: std::sync::atomic::AtomicU64,
}

/// Storage buffers kept for reuse, by size in bytes. A buffer is free when the pool holds the
/// only reference to it: every tensor or cache that used it has been dropped, and the thread
/// that took it has submitted since (see `pending`).
#[derive(Default)]
struct ScratchPool {
    by_size: std::collections::HashMap<u64, Vec<PooledBuffer>>,
    /// The buffers each thread took since its last submit. A call may drop a temporary buffer
    /// while its commands are still being recorded; were it free at once, another thread could
    /// take it for activations that live across two of its submissions, and this call's submit,
    /// landing between them, would overwrite them. Held here, it stays busy until submitted.
    pending: std::collections::HashMap<std::thread::ThreadId, Vec<Arc<wgpu::Buffer>>>,
    /// Counts requests, to tell which free buffers have gone unused for a while.
    requests: u64,
}

struct PooledBuffer {
    buffer: Arc<wgpu::Buffer>,
    last_request: u64,
}

/// A free buffer not asked for in this many requests is released (checked whenever the pool
/// allocates, and every this many requests): a training or inference loop repeats the same
/// sizes; a change of sizes leaves the old ones idle.
const SCRATCH_IDLE_REQUESTS: u64 = 512;

impl ScratchPool {
    /// A free buffer of `bytes`, if any.
    fn take(&mut self, bytes: u64) -> Option<Arc<wgpu::Buffer>> {
        self.requests += 1;
        let now = self.requests;
        if now.is_multiple_of(SCRATCH_IDLE_REQUESTS) {
            self.release_idle();
        }
        let entry = self
            .by_size
            .get_mut(&bytes)?
            .iter_mut()
            .find(|e| Arc::strong_count(&e.buffer) == 1)?;
        entry.last_request = now;
        Some(entry.buffer.clone())
    }

    /// Releases the free buffers not asked for in the last `SCRATCH_IDLE_REQUESTS` requests.
    fn release_idle(&mut self) {
        let now = self.requests;
        for list in self.by_size.values_mut() {
            list.retain(|e| {
                Arc::strong_count(&e.buffer) > 1 || now - e.last_request < SCRATCH_IDLE_REQUESTS
            });
        }
        self.by_size.retain(|_, list| !list.is_empty());
    }

    /// Keeps `buffer` for reuse, first releasing free buffers that have been idle.
    fn insert(&mut self, buffer: Arc<wgpu::Buffer>) {
        self.release_idle();
        let now = self.requests;
        self.by_size
            .entry(buffer.size())
            .or_default()
            .push(PooledBuffer {
                buffer,
                last_request: now,
            });
    }

    /// Bytes held by buffers no tensor uses.
    fn free_bytes(&self) -> u64 {
        self.by_size
            .iter()
            .map(|(size, list)| {
                size * list
                    .iter()
                    .filter(|e| Arc::strong_count(&e.buffer) == 1)
                    .count() as u64
            })
            .sum()
    }
}

thread_local! {
    /// Depth of nested `Gpu::scoped` calls on this thread: only the outermost pushes error scopes
    /// and takes the serialization lock.
    static SCOPE_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// A uniform buffer with one slot per timestep, bound with a dynamic offset so that every step of
/// a sequence reuses one bind group (DESIGN.md §4). Slot `t < capacity` holds `(t, 0, 0, 0)`;
/// the extra slot at index `capacity` holds `(0, H0_MODE, 0, 0)` for the backward pass's last
/// dispatch.
pub(crate) struct StepSlots {
    pub buffer: wgpu::Buffer,
    pub capacity: u32,
    pub stride: u32,
}

/// Timestamp queries written at the beginning and end of every compute pass.
struct Timer {
    query_set: wgpu::QuerySet,
    capacity: u32,
    next: u32,
    /// The label of each timed pass, in query order.
    labels: Vec<&'static str>,
}

/// GPU time of the compute passes recorded since the last [`Gpu::gpu_times`] call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuTimes {
    /// All passes together (the sum of their durations).
    pub total: std::time::Duration,
    /// From the first pass's beginning to the last pass's end: the passes plus the gaps
    /// between them, i.e. the GPU time of the whole call.
    pub span: std::time::Duration,
    /// Per kind of pass (`projection`, `recurrence`, `recurrence backward`, `weight gradients`,
    /// `clip`, …), in the order first seen.
    pub by_label: Vec<(&'static str, std::time::Duration)>,
}

/// Mode flag of the extra slot (see `lstm_step_back.wgsl`).
pub(crate) const H0_MODE: u32 = 2;

impl StepSlots {
    /// Dynamic offset of timestep `t`'s slot.
    pub fn offset(&self, t: usize) -> u32 {
        debug_assert!((t as u32) < self.capacity);
        t as u32 * self.stride
    }

    /// Dynamic offset of the slot that selects the backward pass's `dh_0` mode.
    pub fn h0_offset(&self) -> u32 {
        self.capacity * self.stride
    }
}

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
fn find_adapter(backends: wgpu::Backends, name: Option<&str>) -> Result<wgpu::Adapter> {
    let instance = instance(backends);
    match name {
        Some(name) => {
            let wanted = name.to_lowercase();
            let adapters = pollster::block_on(instance.enumerate_adapters(backends));
            let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
            adapters
                .into_iter()
                .find(|a| a.get_info().name.to_lowercase().contains(&wanted))
                .ok_or_else(|| Error::NoAdapter {
                    detail: format!(" whose name contains `{name}` (found: {names:?})"),
                })
        }
        None => {
            pollster::block_on(
                instance.request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::from_env()
                        .unwrap_or(wgpu::PowerPreference::HighPerformance),
                    force_fallback_adapter: false,
                    compatible_surface: None,
                    // We want the adapter's real limits, not fingerprint-resistant buckets.
                    apply_limit_buckets: false,
                }),
            )
            .map_err(|e| Error::NoAdapter {
                detail: format!(" ({e})"),
            })
        }
    }
}

impl Gpu {
    /// Opens the best adapter: `WGPU_ADAPTER_NAME` (a case-insensitive substring of the name) if
    /// set, else the high-performance one, on the backends in `WGPU_BACKEND` (all if unset).
    /// The device gets the adapter's real limits, not WebGPU's defaults.
    pub fn new() -> Result<Gpu> {
        let name = std::env::var("WGPU_ADAPTER_NAME").ok();
        Gpu::with_adapter(name.as_deref())
    }

    /// Like [`Gpu::new`], but picks the adapter whose name contains `name` (case-insensitive).
    ///
    /// Without `WGPU_BACKEND`, the primary backends (Vulkan, Metal, DX12) are tried first and
    /// OpenGL only when they offer no adapter.
    pub fn with_adapter(name: Option<&str>) -> Result<Gpu> {
        if let Ok(tiling) = std::env::var("WGPU_LSTM_TILING") {
            if StepTiling::parse(&tiling).is_none() {
                return Err(Error::Invalid(format!(
                    "WGPU_LSTM_TILING={tiling}: expected auto, wide, narrow, split or wide-split"
                )));
            }
        }
        let adapter = match wgpu::Backends::from_env() {
            Some(backends) => find_adapter(backends, name)?,
            None => find_adapter(wgpu::Backends::PRIMARY, name)
                .or_else(|_| find_adapter(wgpu::Backends::all(), name))?,
        };
        // Optional features the engine uses when present: timestamps for benchmarks, immediates
        // for the per-step index of the recurrent kernels.
        let features =
            adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::IMMEDIATES);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgpu-lstm"),
            required_features: features,
            required_limits: adapter.limits(),
            ..Default::default()
        }))
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
                kernels: Mutex::new(None),
                slots: Mutex::new(None),
                timer: Mutex::new(None),
                scratch: Mutex::new(ScratchPool::default()),
                dispatches: Default::default(),
                step_tiling: Mutex::new(
                    std::env::var("WGPU_LSTM_TILING")
                        .ok()
                        .and_then(|name| StepTiling::parse(&name))
                        .unwrap_or_default(),
                ),
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

    /// Chooses the tiling of the recurrent step kernels for every model on this device (all
    /// tilings compute the same results; they differ in speed). The default,
    /// [`StepTiling::Auto`], or the `WGPU_LSTM_TILING` environment variable (`auto`, `wide`,
    /// `narrow`, `split`, `wide-split`) when set.
    pub fn set_step_tiling(&self, tiling: StepTiling) {
        *lock(&self.inner.step_tiling) = tiling;
    }

    /// The tiling setting of the recurrent step kernels.
    pub fn step_tiling(&self) -> StepTiling {
        *lock(&self.inner.step_tiling)
    }

    /// Whether two handles share one device context.
    pub fn same(&self, other: &Gpu) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The pipelines, built on first use and cached for the life of the device.
    /// Locks are always taken in the order serialize (inside `scoped`) → kernels / slots / timer.
    pub(crate) fn kernels(&self) -> Result<Arc<Kernels>> {
        self.scoped(|| {
            let mut slot = lock(&self.inner.kernels);
            if let Some(k) = slot.as_ref() {
                return Ok(k.clone());
            }
            let kernels = Arc::new(Kernels::new(&self.inner.device));
            *slot = Some(kernels.clone());
            Ok(kernels)
        })
    }

    /// Step slots for sequences of at least `steps` timesteps; grows (doubling) when needed.
    pub(crate) fn step_slots(&self, steps: usize) -> Result<Arc<StepSlots>> {
        self.scoped(|| self.step_slots_locked(steps))
    }

    fn step_slots_locked(&self, steps: usize) -> Result<Arc<StepSlots>> {
        let mut slot = lock(&self.inner.slots);
        if let Some(s) = slot.as_ref() {
            if s.capacity as usize >= steps {
                return Ok(s.clone());
            }
        }
        let capacity = steps.next_power_of_two().max(64);
        let stride = self
            .inner
            .limits
            .min_uniform_buffer_offset_alignment
            .max(16);
        let bytes = (capacity as u64 + 1) * stride as u64;
        if bytes > u32::MAX as u64 {
            // Dynamic offsets are u32.
            return Err(Error::Limit {
                what: format!("{steps} timesteps of per-step uniform slots"),
                limit: "dynamic offsets (u32)",
                needed: bytes,
                available: u32::MAX as u64,
            });
        }
        self.check_buffer_size("the per-timestep uniform slots", bytes, false)?;
        let words_per_slot = stride as usize / 4;
        let mut data = vec![0u32; (capacity + 1) * words_per_slot];
        for t in 0..capacity {
            data[t * words_per_slot] = t as u32;
        }
        data[capacity * words_per_slot + 1] = H0_MODE;
        let buffer = wgpu::util::DeviceExt::create_buffer_init(
            &self.inner.device,
            &wgpu::util::BufferInitDescriptor {
                label: Some("step slots"),
                contents: bytemuck::cast_slice(&data),
                usage: wgpu::BufferUsages::UNIFORM,
            },
        );
        let slots = Arc::new(StepSlots {
            buffer,
            capacity: capacity as u32,
            stride,
        });
        *slot = Some(slots.clone());
        Ok(slots)
    }

    /// Fails if the device was lost.
    pub(crate) fn check_alive(&self) -> Result<()> {
        match lock(&self.inner.lost).as_ref() {
            Some(reason) => Err(Error::DeviceLost(reason.clone())),
            None => Ok(()),
        }
    }

    /// Runs `f` inside validation, internal and out-of-memory error scopes and turns what they
    /// catch into `Err`, so that misuse never reaches wgpu's default handler (which panics).
    /// Every public operation records and submits inside one such call; nested calls run inside
    /// the outer scopes.
    pub(crate) fn scoped<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.check_alive()?;
        let depth = SCOPE_DEPTH.get();
        if depth > 0 {
            return f();
        }
        let _serial = self.inner.serialize.as_ref().map(lock);
        let device = &self.inner.device;
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        SCOPE_DEPTH.set(depth + 1);
        // A panic inside `f` would leave the depth raised; restore it whatever happens.
        struct Reset(u32);
        impl Drop for Reset {
            fn drop(&mut self) {
                SCOPE_DEPTH.set(self.0);
            }
        }
        let reset = Reset(depth);
        let value = f();
        drop(reset);
        let errors = [
            pollster::block_on(validation.pop()),
            pollster::block_on(internal.pop()),
            pollster::block_on(oom.pop()),
        ];
        let failed = errors.into_iter().flatten().next();
        if failed.is_some() || value.is_err() {
            // A failed call submits nothing more: the scratch buffers it took are free again.
            lock(&self.inner.scratch)
                .pending
                .remove(&std::thread::current().id());
        }
        if let Some(e) = failed {
            return Err(e.into());
        }
        self.check_alive()?;
        value
    }

    /// Checks a buffer size against `max_buffer_size` and, for storage buffers,
    /// `max_storage_buffer_binding_size`.
    pub(crate) fn check_buffer_size(&self, what: &str, bytes: u64, storage: bool) -> Result<()> {
        let limits = &self.inner.limits;
        if bytes > limits.max_buffer_size {
            return Err(Error::Limit {
                what: what.to_string(),
                limit: "max_buffer_size",
                needed: bytes,
                available: limits.max_buffer_size,
            });
        }
        if storage && bytes > limits.max_storage_buffer_binding_size {
            return Err(Error::Limit {
                what: what.to_string(),
                limit: "max_storage_buffer_binding_size",
                needed: bytes,
                available: limits.max_storage_buffer_binding_size,
            });
        }
        Ok(())
    }

    /// Checks a dispatch size against `max_compute_workgroups_per_dimension`.
    pub(crate) fn check_dispatch(&self, what: &str, groups: [u32; 3]) -> Result<()> {
        let max = self.inner.limits.max_compute_workgroups_per_dimension;
        match groups.iter().find(|&&g| g > max) {
            Some(&g) => Err(Error::Limit {
                what: what.to_string(),
                limit: "max_compute_workgroups_per_dimension",
                needed: g as u64,
                available: max as u64,
            }),
            None => Ok(()),
        }
    }

    /// A zero-initialised storage buffer of `len` f32 values, size-checked against the limits.
    pub(crate) fn storage_buffer(&self, what: &str, len: usize) -> Result<wgpu::Buffer> {
        let bytes = (len.max(1) * 4) as u64;
        self.check_buffer_size(what, bytes, true)?;
        self.scoped(|| {
            Ok(self.inner.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(what),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }))
        })
    }

    /// A storage buffer of `len` f32 values whose contents are **unspecified**: a buffer of the
    /// same size that nothing uses any more, or a new one. The hot path (forward, backward and
    /// training calls that repeat their sizes) so allocates no GPU memory after the first call.
    /// Callers overwrite the buffer, or clear it, before reading it.
    pub(crate) fn scratch(&self, what: &str, len: usize) -> Result<Arc<wgpu::Buffer>> {
        let bytes = (len.max(1) * 4) as u64;
        let reused = lock(&self.inner.scratch).take(bytes);
        let buffer = match reused {
            Some(buffer) => buffer,
            None => {
                // Its own error scopes: a buffer whose creation failed (out of memory) must not
                // enter the pool, where every later call of this size would take it again.
                self.check_buffer_size(what, bytes, true)?;
                let buffer = self.scoped(|| {
                    let device = &self.inner.device;
                    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
                    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
                    let buffer = Arc::new(self.storage_buffer(what, len)?);
                    let errors = [
                        pollster::block_on(validation.pop()),
                        pollster::block_on(oom.pop()),
                    ];
                    match errors.into_iter().flatten().next() {
                        Some(e) => Err(Error::from(e)),
                        None => Ok(buffer),
                    }
                })?;
                lock(&self.inner.scratch).insert(buffer.clone());
                buffer
            }
        };
        lock(&self.inner.scratch)
            .pending
            .entry(std::thread::current().id())
            .or_default()
            .push(buffer.clone());
        Ok(buffer)
    }

    /// A scratch buffer holding `data` (4-byte values: lengths, token ids, inputs), written with
    /// `queue.write_buffer`: the write lands at the queue's next submit, so before the commands
    /// this thread is recording and after every earlier submission that used the buffer (it was
    /// free, so those were submitted).
    pub(crate) fn scratch_init<T: bytemuck::Pod>(
        &self,
        what: &str,
        data: &[T],
    ) -> Result<Arc<wgpu::Buffer>> {
        debug_assert_eq!(std::mem::size_of::<T>(), 4);
        let buffer = self.scratch(what, data.len())?;
        if !data.is_empty() {
            self.scoped(|| {
                self.inner
                    .queue
                    .write_buffer(&buffer, 0, bytemuck::cast_slice(data));
                Ok(())
            })?;
        }
        Ok(buffer)
    }

    /// Releases the pooled activation buffers that no tensor uses (they are otherwise kept for
    /// calls of the same sizes, and released after about 500 requests of other sizes).
    pub fn release_scratch(&self) {
        let mut pool = lock(&self.inner.scratch);
        for list in pool.by_size.values_mut() {
            list.retain(|e| Arc::strong_count(&e.buffer) > 1);
        }
        pool.by_size.retain(|_, list| !list.is_empty());
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

    /// Bytes of pooled activation buffers that no tensor uses at the moment.
    pub fn scratch_free_bytes(&self) -> u64 {
        lock(&self.inner.scratch).free_bytes()
    }

    /// A storage buffer holding `data`.
    pub(crate) fn storage_buffer_init(&self, what: &str, data: &[f32]) -> Result<wgpu::Buffer> {
        self.scoped(|| {
            let buffer = self.storage_buffer(what, data.len())?;
            if !data.is_empty() {
                self.inner
                    .queue
                    .write_buffer(&buffer, 0, bytemuck::cast_slice(data));
            }
            Ok(buffer)
        })
    }

    /// A uniform buffer holding a plain-old-data value.
    pub(crate) fn uniform<T: bytemuck::Pod>(&self, what: &str, value: &T) -> Result<wgpu::Buffer> {
        self.scoped(|| {
            Ok(wgpu::util::DeviceExt::create_buffer_init(
                &self.inner.device,
                &wgpu::util::BufferInitDescriptor {
                    label: Some(what),
                    contents: bytemuck::bytes_of(value),
                    usage: wgpu::BufferUsages::UNIFORM,
                },
            ))
        })
    }

    /// A command encoder.
    pub(crate) fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.inner
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Finishes and submits an encoder inside an error scope: one submit per call.
    pub(crate) fn submit(&self, encoder: wgpu::CommandEncoder) -> Result<()> {
        self.scoped(|| {
            self.inner.queue.submit([encoder.finish()]);
            // What this thread recorded is now queued: its scratch buffers may be reused.
            lock(&self.inner.scratch)
                .pending
                .remove(&std::thread::current().id());
            Ok(())
        })
    }

    /// Records with a new encoder and submits it, all inside one error scope.
    pub(crate) fn record<T>(
        &self,
        label: &str,
        f: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<T>,
    ) -> Result<T> {
        self.scoped(|| {
            let mut encoder = self.encoder(label);
            let value = f(&mut encoder)?;
            self.submit(encoder)?;
            Ok(value)
        })
    }

    /// Copies `len` f32 values starting at element `offset` of `buffer` back to the host, waiting
    /// for the GPU. Reads like this are the only places the engine waits.
    pub(crate) fn read(
        &self,
        buffer: &wgpu::Buffer,
        offset: usize,
        len: usize,
    ) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(buffer, (offset * 4) as u64, (len * 4) as u64)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Copies `len` bytes from byte `offset` of `buffer` back to the host, waiting for the GPU.
    fn read_bytes(&self, buffer: &wgpu::Buffer, offset: u64, len: u64) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let staging = self.scoped(|| {
            let staging = self.inner.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: len,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder = self.encoder("readback");
            encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, len);
            self.inner.queue.submit([encoder.finish()]);
            Ok(staging)
        })?;
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            // The receiver only goes away if we returned early; nothing to report then.
            let _ = sender.send(r);
        });
        self.wait()?;
        match pollster::block_on(receiver.receive()) {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(Error::Readback(e.to_string())),
            None => return Err(Error::Readback("the map callback never ran".into())),
        }
        // Mapping and unmapping use the GL context too: hold the serialization lock.
        let _serial = self.inner.serialize.as_ref().map(lock);
        let data = {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| Error::Readback(e.to_string()))?;
            view.to_vec()
        };
        staging.unmap();
        Ok(data)
    }

    /// Waits until the GPU has finished everything submitted so far.
    pub fn wait(&self) -> Result<()> {
        debug_assert_eq!(
            SCOPE_DEPTH.get(),
            0,
            "waiting inside a scoped operation would deadlock on GL"
        );
        let _serial = self.inner.serialize.as_ref().map(lock);
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Readback(e.to_string()))?;
        self.check_alive()
    }

    /// Starts measuring GPU time: every compute pass the engine records from now on writes
    /// timestamps (up to `passes` passes between two [`Gpu::gpu_time`] calls). Needs the
    /// adapter's `TIMESTAMP_QUERY` feature, which [`Gpu::new`] enables when present.
    pub fn enable_timing(&self, passes: u32) -> Result<()> {
        if !self
            .inner
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            return Err(Error::Invalid(
                "this device has no timestamp queries (feature TIMESTAMP_QUERY)".into(),
            ));
        }
        let capacity = (2 * passes).clamp(2, wgpu::QUERY_SET_MAX_QUERIES);
        let query_set = self.scoped(|| {
            Ok(self
                .inner
                .device
                .create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("pass timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: capacity,
                }))
        })?;
        *lock(&self.inner.timer) = Some(Timer {
            query_set,
            capacity,
            next: 0,
            labels: Vec::new(),
        });
        Ok(())
    }

    /// GPU time spent in the compute passes recorded since the last call (waits for them),
    /// in total and per kind of pass; `None` unless [`Gpu::enable_timing`] was called.
    pub fn gpu_times(&self) -> Result<Option<GpuTimes>> {
        // Resolve inside the scope: locks in the order serialize → timer.
        let resolved = self.scoped(|| {
            let mut timer = lock(&self.inner.timer);
            let Some(t) = timer.as_mut() else {
                return Ok(None);
            };
            let used = t.next;
            let labels = std::mem::take(&mut t.labels);
            t.next = 0;
            if used == 0 {
                return Ok(Some(None));
            }
            let resolve = self.inner.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: used as u64 * 8,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut encoder = self.encoder("resolve timestamps");
            encoder.resolve_query_set(&t.query_set, 0..used, &resolve, 0);
            self.inner.queue.submit([encoder.finish()]);
            Ok(Some(Some((used, resolve, labels))))
        })?;
        let (used, resolve, labels) = match resolved {
            None => return Ok(None),
            Some(None) => return Ok(Some(GpuTimes::default())),
            Some(Some(r)) => r,
        };
        let bytes = self.read_bytes(&resolve, 0, used as u64 * 8)?;
        let period = self.inner.queue.get_timestamp_period() as f64;
        let mut times = GpuTimes::default();
        let stamp = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        let first = bytes
            .chunks_exact(8)
            .step_by(2)
            .map(stamp)
            .min()
            .unwrap_or(0);
        let last = bytes
            .chunks_exact(8)
            .skip(1)
            .step_by(2)
            .map(stamp)
            .max()
            .unwrap_or(0);
        times.span =
            std::time::Duration::from_nanos((last.saturating_sub(first) as f64 * period) as u64);
        for (pair, label) in bytes.chunks_exact(16).zip(labels) {
            let ticks = stamp(&pair[8..]).saturating_sub(stamp(&pair[..8]));
            let d = std::time::Duration::from_nanos((ticks as f64 * period) as u64);
            times.total += d;
            match times.by_label.iter_mut().find(|(l, _)| *l == label) {
                Some((_, sum)) => *sum += d,
                None => times.by_label.push((label, d)),
            }
        }
        Ok(Some(times))
    }

    /// The total of [`Gpu::gpu_times`].
    pub fn gpu_time(&self) -> Result<Option<std::time::Duration>> {
        Ok(self.gpu_times()?.map(|t| t.total))
    }

    /// A compute pass, timed when timing is enabled.
    pub(crate) fn compute_pass<'e>(
        &self,
        encoder: &'e mut wgpu::CommandEncoder,
        label: &'static str,
    ) -> wgpu::ComputePass<'e> {
        let mut timer = lock(&self.inner.timer);
        let writes = timer.as_mut().and_then(|t| {
            (t.next + 2 <= t.capacity).then(|| {
                let begin = t.next;
                t.next += 2;
                t.labels.push(label);
                (begin, &t.query_set)
            })
        });
        match writes {
            Some((begin, query_set)) => encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set,
                    beginning_of_pass_write_index: Some(begin),
                    end_of_pass_write_index: Some(begin + 1),
                }),
            }),
            None => encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: None,
            }),
        }
    }
}

/// Locks a mutex, recovering the data if another thread panicked while holding it (the data
/// guarded here stays valid whatever a panicking thread did).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch buffer dropped before its thread submitted stays busy for other threads until
    /// that submit, and is reused after it.
    #[test]
    fn scratch_dropped_before_submit_is_not_lent_to_another_thread() {
        let gpu = Gpu::new().expect("this test needs a GPU adapter");
        let taken = gpu.scratch("temporary", 1000).unwrap();
        let address = Arc::as_ptr(&taken) as usize;
        drop(taken); // as a temporary is, while its commands are still being recorded
        let other = gpu.clone();
        let lent = std::thread::spawn(move || {
            Arc::as_ptr(&other.scratch("activations", 1000).unwrap()) as usize
        })
        .join()
        .unwrap();
        assert_ne!(lent, address, "lent before the taking thread submitted");
        gpu.submit(gpu.encoder("nothing")).unwrap();
        let after = gpu.scratch("again", 1000).unwrap();
        assert_eq!(
            Arc::as_ptr(&after) as usize,
            address,
            "not reused after the submit"
        );
    }

    /// A call that fails after taking scratch buffers submits nothing: they are free again.
    #[test]
    fn scratch_of_a_failed_call_is_free_again() {
        let gpu = Gpu::new().expect("this test needs a GPU adapter");
        let mut address = 0;
        let failed = gpu.scoped(|| -> Result<()> {
            address = Arc::as_ptr(&gpu.scratch("temporary", 777)?) as usize;
            Err(Error::Invalid("fails after taking a buffer".into()))
        });
        assert!(failed.is_err());
        let other = gpu.clone();
        let lent = std::thread::spawn(move || {
            Arc::as_ptr(&other.scratch("activations", 777).unwrap()) as usize
        })
        .join()
        .unwrap();
        assert_eq!(lent, address, "still held for the failed call");
    }
}
