//! The one error type of the crate.

use std::fmt;

/// What to do when no adapter is found.
#[cfg(not(target_arch = "wasm32"))]
const ADAPTER_ADVICE: &str = "Install a Vulkan, Metal or DX12 driver; on a Linux machine \
    without a GPU, Mesa's software Vulkan driver works: `apt-get install mesa-vulkan-drivers \
    libvulkan1` (Debian/Ubuntu). `wgpu-lstm devices` lists what wgpu sees.";
#[cfg(target_arch = "wasm32")]
const ADAPTER_ADVICE: &str = "The browser offers no WebGPU adapter: use a browser with WebGPU \
    (Chrome, Edge, Safari) or enable it in the browser's settings, with hardware acceleration on.";

/// Everything that can go wrong in `wgpu-lstm`. Messages say what happened and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No GPU adapter was found (or none matched the request).
    #[error("no GPU adapter found{detail}. {advice}", advice = ADAPTER_ADVICE)]
    NoAdapter {
        /// Extra context, e.g. the adapter name that was asked for.
        detail: String,
    },

    /// The adapter refused to create a device.
    #[error("could not open the GPU device: {0}")]
    RequestDevice(String),

    /// A tensor has the wrong shape.
    #[error("tensor `{tensor}` has shape {given}, expected {expected}")]
    Shape {
        /// Name of the tensor.
        tensor: String,
        /// The expected shape, e.g. `[T, B, 13]`.
        expected: String,
        /// The shape that was given.
        given: String,
    },

    /// A size is outside what the engine or the device supports.
    #[error("{what} needs {needed}, but the device limit `{limit}` is {available}")]
    Limit {
        /// What needed the resource.
        what: String,
        /// The wgpu limit that is exceeded.
        limit: &'static str,
        /// The amount needed.
        needed: u64,
        /// The device's value of the limit.
        available: u64,
    },

    /// An argument or configuration is invalid.
    #[error("invalid argument: {0}")]
    Invalid(String),

    /// A parameter name is unknown.
    #[error("no parameter named `{name}`; this model has: {known}")]
    UnknownParameter {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: String,
    },

    /// wgpu reported a validation error, out-of-memory or internal error for our work.
    #[error("GPU error ({kind}): {message}")]
    Gpu {
        /// Validation, out of memory, internal.
        kind: GpuErrorKind,
        /// wgpu's message.
        message: String,
    },

    /// The device was lost (driver reset, GPU removed); make a new `Gpu`.
    #[error("the GPU device was lost ({0}); create a new Gpu to continue")]
    DeviceLost(String),

    /// Mapping or polling failed while reading results back.
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),

    /// `clip_grad_norm` with `error_if_nonfinite` met a NaN or infinite norm.
    #[error(
        "the total gradient norm is {0}; gradients were left untouched (error_if_nonfinite). \
         Lower the learning rate or clip earlier"
    )]
    NonFiniteNorm(f32),

    /// A value that must be finite is NaN or infinite (a diverged run's loss or weights).
    #[error(
        "{0}. Values must be finite: lower the learning rate, clip the gradients, or skip \
         non-finite steps (`--skip-nonfinite`)"
    )]
    NonFinite(String),

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The class of a wgpu error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuErrorKind {
    /// Invalid use of the API (a bug in the engine, or a size it did not check).
    Validation,
    /// The device ran out of memory.
    OutOfMemory,
    /// Any other failure inside the driver or wgpu.
    Internal,
}

impl fmt::Display for GpuErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GpuErrorKind::Validation => "validation",
            GpuErrorKind::OutOfMemory => "out of memory",
            GpuErrorKind::Internal => "internal",
        })
    }
}

impl From<wgpu::Error> for Error {
    fn from(e: wgpu::Error) -> Self {
        let (kind, message) = match e {
            wgpu::Error::OutOfMemory { source } => (GpuErrorKind::OutOfMemory, source.to_string()),
            wgpu::Error::Validation { description, .. } => (GpuErrorKind::Validation, description),
            wgpu::Error::Internal { description, .. } => (GpuErrorKind::Internal, description),
        };
        Error::Gpu { kind, message }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Formats a shape as `[2, 3, 4]`.
pub(crate) fn fmt_shape(shape: &[usize]) -> String {
    format!("{shape:?}")
}
