//! Error scopes around every operation, device loss, and checks of sizes against the limits.

use super::{lock, Gpu};
use crate::error::{Error, Result};

thread_local! {
    /// Depth of nested `Gpu::scoped` calls on this thread: only the outermost pushes error scopes
    /// and takes the serialization lock.
    pub(super) static SCOPE_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

impl Gpu {
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
        let failed = caught([validation, internal, oom]);
        if failed.is_some() || value.is_err() {
            // A failed call submits nothing more: the scratch buffers it took are free again.
            self.forget_pending();
        }
        if let Some(e) = failed {
            return Err(e.into());
        }
        self.check_alive()?;
        value
    }

    /// Runs `f` in error scopes of its own, even inside a `scoped` call: for objects that are
    /// cached (pipelines, pooled buffers), which must never be kept when their creation failed.
    pub(crate) fn created<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        self.scoped(|| {
            let device = &self.inner.device;
            let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
            let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let value = f();
            match caught([validation, oom]) {
                Some(e) => Err(Error::from(e)),
                None => Ok(value),
            }
        })
    }

    /// Awaits what the error scopes closed so far caught and fails with the first error, or if
    /// the device was lost. Native scopes were already judged when they closed; on the web their
    /// verdicts arrive later, and every async readback awaits them here before it returns.
    pub(crate) async fn settle(&self) -> Result<()> {
        #[cfg(target_arch = "wasm32")]
        {
            let mut first = None;
            for verdict in DEFERRED.take() {
                if let (Some(e), None) = (verdict.await, &first) {
                    first = Some(e);
                }
            }
            if let Some(e) = first {
                return Err(e.into());
            }
        }
        self.check_alive()
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

    /// A 2-D grid of workgroups covering `workgroups` in total: at most the device's maximum
    /// along x, more rows along y (for elementwise kernels over long arrays).
    pub(crate) fn grid_2d(&self, what: &str, workgroups: usize) -> Result<[u32; 3]> {
        let max = self.inner.limits.max_compute_workgroups_per_dimension as usize;
        let grid = if workgroups <= max {
            [workgroups as u32, 1, 1]
        } else {
            [max as u32, workgroups.div_ceil(max) as u32, 1]
        };
        self.check_dispatch(what, grid)?;
        Ok(grid)
    }
}

/// The first error caught by `scopes` (innermost first), waiting for their verdicts: native
/// backends judge a scope when it is popped, so this does not block for long.
#[cfg(not(target_arch = "wasm32"))]
fn caught<const N: usize>(scopes: [wgpu::ErrorScopeGuard; N]) -> Option<wgpu::Error> {
    let verdicts = scopes.map(|scope| pollster::block_on(scope.pop()));
    verdicts.into_iter().flatten().next()
}

/// A pending verdict of a popped error scope (the web's are promises).
#[cfg(target_arch = "wasm32")]
type Verdict = std::pin::Pin<Box<dyn std::future::Future<Output = Option<wgpu::Error>>>>;

#[cfg(target_arch = "wasm32")]
thread_local! {
    /// Verdicts not yet awaited: nothing on the web may wait, so scopes are popped at once and
    /// judged by the next [`Gpu::settle`]. The web has one thread, so one list serves.
    static DEFERRED: std::cell::RefCell<Vec<Verdict>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// On the web: pops `scopes` and defers their verdicts to [`Gpu::settle`] (none now).
#[cfg(target_arch = "wasm32")]
fn caught<const N: usize>(scopes: [wgpu::ErrorScopeGuard; N]) -> Option<wgpu::Error> {
    let verdicts = scopes.map(|scope| Box::pin(scope.pop()) as Verdict);
    DEFERRED.with_borrow_mut(|deferred| deferred.extend(verdicts));
    None
}
