//! What users build: configurations, the parameter arena and the recurrent model.

mod arena;
mod backward;
mod config;
mod forward;
mod lstm;
mod outputs;
mod plan;

pub use arena::{ClipNorm, ParamArena, ParamView};
pub use config::{Cell, LstmConfig, Nonlinearity, ParamNames};
pub use lstm::Lstm;
pub use outputs::{
    BackwardOutput, DispatchCounts, ForwardCache, ForwardOptions, GradientProbes, LstmOutput,
    OutputGrads,
};
