//! The subcommands of the `wgpu-lstm` command line, one module each.

pub(crate) mod bench;
pub(crate) mod check;
pub(crate) mod devices;
pub(crate) mod gradflow;
pub(crate) mod infer;
pub(crate) mod options;
pub(crate) mod runtime;
pub(crate) mod sample;
pub(crate) mod train;
