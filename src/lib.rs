//! # wgpu-lstm
//!
//! A GPU-accelerated LSTM engine on wgpu compute shaders: PyTorch's equations, parameter names
//! and layouts, running on any GPU wgpu reaches (Vulkan, Metal, DX12, OpenGL).
//!
//! ```no_run
//! use wgpu_lstm::{Gpu, Lstm, LstmConfig, Tensor};
//!
//! # fn main() -> wgpu_lstm::Result<()> {
//! let gpu = Gpu::new()?;
//! let lstm = Lstm::new(&gpu, LstmConfig::new(8, 16))?;
//! let (steps, batch) = (5, 2);
//! let x = Tensor::from_slice(&gpu, &[steps, batch, 8], &vec![0.1; steps * batch * 8])?;
//! let out = lstm.forward(&x, None, None)?;
//! let y: Vec<f32> = out.y.to_vec()?; // [T, B, H]
//! # Ok(()) }
//! ```
//!
//! On the web (`wasm32-unknown-unknown`, the browser's WebGPU) the same API serves, with the
//! `_async` forms of everything that waits ([`Gpu::new_async`], [`Tensor::to_vec_async`], …);
//! the blocking forms and files are native only.
//!
//! Layout of the crate (see `DESIGN.md`): [`gpu`] is the wgpu layer, [`kernels`] one module per
//! WGSL shader, [`model`] what users build (the LSTM or vanilla RNN and its parameter arena),
//! [`io`] safetensors files and PyTorch state dicts, [`train`] optimizers, losses, tasks and the
//! training loop, [`lab`] the gradient-flow experiment, [`bench`](mod@bench) the benchmarks, and
//! [`reference`](mod@reference) the f64 oracle the tests compare with.

#![warn(missing_docs)]

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod error;
pub mod gpu;
pub mod io;
pub mod kernels;
pub mod lab;
pub mod model;
pub mod reference;
pub mod train;

pub use error::{Error, GpuErrorKind, Result};
pub use gpu::{Gpu, GpuTimes, Tensor};
pub use kernels::{Recurrence, StepTiling};
pub use model::{
    BackwardOutput, Cell, ClipNorm, DispatchCounts, ForwardCache, ForwardOptions, GradientProbes,
    Lstm, LstmConfig, LstmOutput, Nonlinearity, OutputGrads, ParamArena, ParamNames,
};
/// The wgpu this crate is built on, for applications that hand it their own device
/// ([`Gpu::from_device`]) and need the same version.
pub use wgpu;

/// The README's examples, compiled and run as doctests so that the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
