//! What users build: configurations, the parameter arena and the LSTM.

mod arena;
mod config;
mod lstm;

pub use arena::{ClipNorm, ParamArena, ParamView};
pub use config::{Cell, LstmConfig, ParamNames};
pub use lstm::{
    BackwardOutput, DispatchCounts, ForwardCache, ForwardOptions, GradientProbes, Lstm, LstmOutput,
    OutputGrads,
};
