//! Reading results back to the host: the only places the engine waits for the GPU.

use super::{lock, Gpu};
use crate::error::{Error, Result};

/// Native code's blocking form of an async operation. Native backends complete a readback
/// while it polls the device, so blocking on one is safe there; on the web it would never end,
/// which is why the blocking forms do not exist there.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn block<F: std::future::Future>(future: F) -> F::Output {
    pollster::block_on(future)
}

impl Gpu {
    /// Copies `len` f32 values starting at element `offset` of `buffer` back to the host, waiting
    /// for the GPU. Reads like this are the only places the engine waits.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn read(
        &self,
        buffer: &wgpu::Buffer,
        offset: usize,
        len: usize,
    ) -> Result<Vec<f32>> {
        block(self.read_async(buffer, offset, len))
    }

    /// [`Gpu::read`] as a future: what the web awaits.
    pub(crate) async fn read_async(
        &self,
        buffer: &wgpu::Buffer,
        offset: usize,
        len: usize,
    ) -> Result<Vec<f32>> {
        let bytes = self
            .read_bytes_async(buffer, (offset * 4) as u64, (len * 4) as u64)
            .await?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Copies `len` bytes from byte `offset` of `buffer` back to the host, waiting for the GPU.
    /// Native backends run the map callback while the device is polled; the web runs it when
    /// the browser resolves the map promise, which awaiting lets it do.
    pub(super) async fn read_bytes_async(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
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
        #[cfg(not(target_arch = "wasm32"))]
        self.wait()?;
        let mapped = receiver.receive().await;
        // An error in anything submitted before fails the read, even if the copy went through.
        self.settle().await?;
        match mapped {
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

    /// Waits until the GPU has finished everything submitted so far (native only: the web
    /// awaits a readback instead).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait(&self) -> Result<()> {
        debug_assert_eq!(
            super::scope::SCOPE_DEPTH.get(),
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
}
