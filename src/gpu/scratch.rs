//! Buffers: new storage and uniform buffers, and the scratch pool that reuses activation
//! buffers from call to call.

use super::{lock, Gpu};
use crate::error::Result;
use std::sync::Arc;

/// Storage buffers kept for reuse, by size in bytes. A buffer is free when the pool holds the
/// only reference to it: every tensor or cache that used it has been dropped, and the thread
/// that took it has submitted since (see `pending`).
#[derive(Default)]
pub(super) struct ScratchPool {
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

impl Gpu {
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
        self.uniform_slice(what, std::slice::from_ref(value))
    }

    /// A uniform buffer holding `values` (a WGSL array of them).
    pub(crate) fn uniform_slice<T: bytemuck::Pod>(
        &self,
        what: &str,
        values: &[T],
    ) -> Result<wgpu::Buffer> {
        self.scoped(|| {
            Ok(wgpu::util::DeviceExt::create_buffer_init(
                &self.inner.device,
                &wgpu::util::BufferInitDescriptor {
                    label: Some(what),
                    contents: bytemuck::cast_slice(values),
                    usage: wgpu::BufferUsages::UNIFORM,
                },
            ))
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
                // A buffer whose creation failed (out of memory) must not enter the pool, where
                // every later call of this size would take it again.
                self.check_buffer_size(what, bytes, true)?;
                let buffer = self.created(|| self.storage_buffer(what, len))??;
                let buffer = Arc::new(buffer);
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

    /// Bytes of pooled activation buffers that no tensor uses at the moment.
    pub fn scratch_free_bytes(&self) -> u64 {
        lock(&self.inner.scratch).free_bytes()
    }

    /// What this thread recorded is queued: its scratch buffers may be reused.
    pub(super) fn forget_pending(&self) {
        lock(&self.inner.scratch)
            .pending
            .remove(&std::thread::current().id());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

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
