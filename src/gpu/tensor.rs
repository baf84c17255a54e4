//! Device tensors: an f32 buffer (or a view into one) with a shape.

use super::Gpu;
use crate::error::{fmt_shape, Error, Result};
use std::sync::Arc;

/// An f32 tensor on the GPU: a row-major view (element offset and shape) of a storage buffer.
///
/// Tensors returned by the engine are views into its own buffers (for example `y` is a view of
/// the hidden-state history); they stay valid as long as any handle to them lives. Cloning a
/// tensor clones the handle, not the data.
#[derive(Clone)]
pub struct Tensor {
    gpu: Gpu,
    buffer: Arc<wgpu::Buffer>,
    offset: usize,
    shape: Vec<usize>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor{} @ {}", fmt_shape(&self.shape), self.offset)
    }
}

impl Tensor {
    /// Uploads `data` (row-major, `shape.iter().product()` values) to a new buffer.
    pub fn from_slice(gpu: &Gpu, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        let len = element_count(shape)?;
        if data.len() != len {
            return Err(Error::Invalid(format!(
                "shape {} holds {len} values but {} were given",
                fmt_shape(shape),
                data.len()
            )));
        }
        let buffer = gpu.storage_buffer_init("tensor", data)?;
        Ok(Tensor::view(gpu, Arc::new(buffer), 0, shape))
    }

    /// A new tensor of zeros.
    pub fn zeros(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
        let len = element_count(shape)?;
        let buffer = gpu.storage_buffer("tensor", len)?;
        Ok(Tensor::view(gpu, Arc::new(buffer), 0, shape))
    }

    /// Wraps an application's buffer (which must have `STORAGE | COPY_SRC | COPY_DST` usage and be
    /// made on `gpu`'s device) as a tensor starting at element `offset`.
    pub fn from_buffer(
        gpu: &Gpu,
        buffer: Arc<wgpu::Buffer>,
        offset: usize,
        shape: &[usize],
    ) -> Result<Tensor> {
        let need = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        if !buffer.usage().contains(need) {
            return Err(Error::Invalid(format!(
                "a buffer used as a tensor needs usage STORAGE | COPY_SRC; it has {:?}",
                buffer.usage()
            )));
        }
        let len = element_count(shape)?;
        let end = (offset as u64).saturating_add(len as u64).saturating_mul(4);
        if end > buffer.size() {
            return Err(Error::Invalid(format!(
                "a tensor of shape {} at element {offset} needs {end} bytes; the buffer has {}",
                fmt_shape(shape),
                buffer.size()
            )));
        }
        Ok(Tensor::view(gpu, buffer, offset, shape))
    }

    pub(crate) fn view(
        gpu: &Gpu,
        buffer: Arc<wgpu::Buffer>,
        offset: usize,
        shape: &[usize],
    ) -> Tensor {
        Tensor {
            gpu: gpu.clone(),
            buffer,
            offset,
            shape: shape.to_vec(),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The underlying buffer (shared with the engine). Tensors the engine returns may be views
    /// of its pooled activation buffers, which it reuses once no `Arc` of them is left: to keep
    /// the data beyond the tensor, keep the tensor or this `Arc`, not a clone of the
    /// `wgpu::Buffer` inside.
    pub fn buffer(&self) -> &Arc<wgpu::Buffer> {
        &self.buffer
    }

    /// Element offset of the first value in [`Tensor::buffer`].
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The context the tensor lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Copies the values back to the host (waits for the GPU work that writes them).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        self.gpu.read(&self.buffer, self.offset, self.len())
    }

    /// [`Tensor::to_vec`] as a future: the web's form, and native code's inside async code.
    pub async fn to_vec_async(&self) -> Result<Vec<f32>> {
        self.gpu
            .read_async(&self.buffer, self.offset, self.len())
            .await
    }

    /// Fails with [`Error::Shape`] naming `name` unless the shape is `expected`.
    pub fn expect_shape(&self, name: &str, expected: &[usize]) -> Result<()> {
        check_shape(name, &self.shape, expected)
    }

    /// Byte offset of the view.
    pub(crate) fn byte_offset(&self) -> u64 {
        (self.offset * 4) as u64
    }

    /// Byte size of the view.
    pub(crate) fn byte_len(&self) -> u64 {
        (self.len() * 4) as u64
    }
}

/// The number of elements of `shape`, or an error if it overflows.
fn element_count(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| Error::Invalid(format!("shape {} has too many elements", fmt_shape(shape))))
}

/// Fails with [`Error::Shape`] naming `name` unless `given == expected`.
pub(crate) fn check_shape(name: &str, given: &[usize], expected: &[usize]) -> Result<()> {
    if given != expected {
        return Err(Error::Shape {
            tensor: name.to_string(),
            expected: fmt_shape(expected),
            given: fmt_shape(given),
        });
    }
    Ok(())
}
