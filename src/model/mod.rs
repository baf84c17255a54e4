//! What users build: configurations, the parameter arena and the LSTM.

mod arena;
mod lstm;

pub use arena::{ClipNorm, ParamArena, ParamView};
pub use lstm::{
    BackwardOutput, DispatchCounts, ForwardCache, Lstm, LstmConfig, LstmOutput, OutputGrads,
};
