//! All parameters of a model in one GPU buffer, all their gradients in a second buffer with the
//! same layout (DESIGN.md "Arenas"): clipping is one reduction over one array, an optimizer step
//! one elementwise pass, whatever the model's size.

use crate::error::{fmt_shape, Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::kernels::reduce::{self, ERROR_IF_NONFINITE};
use std::sync::Arc;

/// A named tensor inside an arena: an element offset and a shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamView {
    /// PyTorch's name, e.g. `weight_ih_l0`.
    pub name: String,
    /// Element offset in the arena.
    pub offset: usize,
    /// The shape.
    pub shape: Vec<usize>,
}

impl ParamView {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the view is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Parameters and gradients of a model, each one GPU buffer.
pub struct ParamArena {
    gpu: Gpu,
    params: Arc<wgpu::Buffer>,
    grads: Arc<wgpu::Buffer>,
    views: Vec<ParamView>,
    len: usize,
}

impl ParamArena {
    /// Lays out `tensors` (name, shape) one after the other; parameters and gradients start at 0.
    pub fn new(gpu: &Gpu, tensors: &[(String, Vec<usize>)]) -> Result<ParamArena> {
        let mut views = Vec::with_capacity(tensors.len());
        let mut len = 0;
        for (name, shape) in tensors {
            let view = ParamView {
                name: name.clone(),
                offset: len,
                shape: shape.clone(),
            };
            len = shape
                .iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .and_then(|n| len.checked_add(n))
                .ok_or_else(|| {
                    Error::Invalid(format!("tensor `{name}` {} is too large", fmt_shape(shape)))
                })?;
            views.push(view);
        }
        Ok(ParamArena {
            gpu: gpu.clone(),
            params: Arc::new(gpu.storage_buffer("parameter arena", len)?),
            grads: Arc::new(gpu.storage_buffer("gradient arena", len)?),
            views,
            len,
        })
    }

    /// The context the arena lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// The named views, in layout order.
    pub fn views(&self) -> &[ParamView] {
        &self.views
    }

    /// The names of the views, in layout order.
    pub fn names(&self) -> Vec<String> {
        self.views.iter().map(|v| v.name.clone()).collect()
    }

    /// Total number of parameters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the arena holds no parameter.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The view called `name`.
    pub fn view(&self, name: &str) -> Result<&ParamView> {
        self.views
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| Error::UnknownParameter {
                name: name.to_string(),
                known: self
                    .views
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The parameter buffer.
    pub fn params_buffer(&self) -> &Arc<wgpu::Buffer> {
        &self.params
    }

    /// The gradient buffer.
    pub fn grads_buffer(&self) -> &Arc<wgpu::Buffer> {
        &self.grads
    }

    /// Every parameter in layout order, in one readback (index with the views' offsets).
    pub async fn all_params_async(&self) -> Result<Vec<f32>> {
        self.gpu.read_async(&self.params, 0, self.len).await
    }

    /// The parameter `name` as a device tensor (a view of the arena).
    pub fn param_tensor(&self, name: &str) -> Result<Tensor> {
        let v = self.view(name)?;
        Ok(Tensor::view(
            &self.gpu,
            self.params.clone(),
            v.offset,
            &v.shape,
        ))
    }

    /// The gradient of `name` as a device tensor (a view of the gradient arena).
    pub fn grad_tensor(&self, name: &str) -> Result<Tensor> {
        let v = self.view(name)?;
        Ok(Tensor::view(
            &self.gpu,
            self.grads.clone(),
            v.offset,
            &v.shape,
        ))
    }

    fn write(&self, buffer: &wgpu::Buffer, name: &str, data: &[f32]) -> Result<()> {
        let v = self.view(name)?;
        if data.len() != v.len() {
            return Err(Error::Shape {
                tensor: name.to_string(),
                expected: format!("{} ({} values)", fmt_shape(&v.shape), v.len()),
                given: format!("{} values", data.len()),
            });
        }
        self.gpu.scoped(|| {
            self.gpu.queue().write_buffer(
                buffer,
                (v.offset * 4) as u64,
                bytemuck::cast_slice(data),
            );
            Ok(())
        })
    }

    /// Overwrites parameter `name` (row-major, PyTorch layout).
    pub fn set(&self, name: &str, data: &[f32]) -> Result<()> {
        self.write(&self.params, name, data)
    }

    /// Reads parameter `name` back.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn get(&self, name: &str) -> Result<Vec<f32>> {
        self.param_tensor(name)?.to_vec()
    }

    /// [`ParamArena::get`] as a future (for the web).
    pub async fn get_async(&self, name: &str) -> Result<Vec<f32>> {
        self.param_tensor(name)?.to_vec_async().await
    }

    /// Overwrites the gradient of `name` (e.g. to clip gradients computed elsewhere).
    pub fn set_grad(&self, name: &str, data: &[f32]) -> Result<()> {
        self.write(&self.grads, name, data)
    }

    /// Reads the gradient of `name` back.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn grad(&self, name: &str) -> Result<Vec<f32>> {
        self.grad_tensor(name)?.to_vec()
    }

    /// [`ParamArena::grad`] as a future (for the web).
    pub async fn grad_async(&self, name: &str) -> Result<Vec<f32>> {
        self.grad_tensor(name)?.to_vec_async().await
    }

    /// Sets every gradient to zero (recorded on the queue; no wait).
    pub fn zero_grad(&self) -> Result<()> {
        self.gpu.record("zero_grad", |encoder| {
            encoder.clear_buffer(&self.grads, 0, None);
            Ok(())
        })
    }

    /// `torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type=2, error_if_nonfinite)`
    /// over the whole gradient arena, on the GPU: a deterministic three-pass reduction, no host
    /// round trip. The returned [`ClipNorm`] reads the pre-clip norm back only when asked.
    ///
    /// With `error_if_nonfinite`, a NaN or infinite norm leaves the gradients untouched and
    /// [`ClipNorm::total_norm`] returns [`Error::NonFiniteNorm`]. Without it, as in PyTorch, an
    /// infinite norm gives coefficient 0 and a NaN norm makes every gradient NaN.
    pub fn clip_grad_norm(&self, max_norm: f32, error_if_nonfinite: bool) -> Result<ClipNorm> {
        if !max_norm.is_finite() || max_norm < 0.0 {
            return Err(Error::Invalid(format!(
                "max_norm must be finite and non-negative, got {max_norm}"
            )));
        }
        let flags = if error_if_nonfinite {
            ERROR_IF_NONFINITE
        } else {
            0
        };
        self.gpu.record("clip_grad_norm", |encoder| {
            // The finish pass writes elements 0, 1, 2, the only ones read (a scratch buffer).
            let result = self.gpu.scratch("clip result", 4)?;
            let mut pass = self.gpu.compute_pass(encoder, "clip");
            reduce::encode_clip(
                &self.gpu,
                &mut pass,
                &self.grads,
                self.len,
                max_norm,
                flags,
                &result,
            )?;
            Ok(ClipNorm {
                result: Tensor::view(&self.gpu, result, 0, &[3]),
            })
        })
    }
}

/// The outcome of a [`ParamArena::clip_grad_norm`] call, still on the GPU.
pub struct ClipNorm {
    result: Tensor,
}

impl ClipNorm {
    /// The total L2 norm of the gradients before clipping (waits for the GPU).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn total_norm(&self) -> Result<f32> {
        crate::gpu::block(self.total_norm_async())
    }

    /// [`ClipNorm::total_norm`] as a future (for the web).
    pub async fn total_norm_async(&self) -> Result<f32> {
        let r = self.result.to_vec_async().await?;
        if r[2] != 0.0 {
            return Err(Error::NonFiniteNorm(r[0]));
        }
        Ok(r[0])
    }

    /// The coefficient the gradients were multiplied by (1 when not clipped).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn coefficient(&self) -> Result<f32> {
        crate::gpu::block(self.coefficient_async())
    }

    /// [`ClipNorm::coefficient`] as a future (for the web).
    pub async fn coefficient_async(&self) -> Result<f32> {
        Ok(self.result.to_vec_async().await?[1])
    }

    /// `[norm, coefficient, untouched flag]` on the GPU, for chaining without a readback.
    pub fn tensor(&self) -> &Tensor {
        &self.result
    }
}
