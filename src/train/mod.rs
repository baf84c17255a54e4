//! Training: optimizers, heads and losses, built-in tasks, the training loop and checkpoints.

mod checkpoint;
mod model;
mod optim;
mod tasks;
mod trainer;

pub use checkpoint::Checkpoint;
pub use model::{
    InputKind, Inputs, OutputKind, SequenceModel, StepLoss, Targets, HEAD_BIAS, HEAD_WEIGHT, IGNORE,
};
pub use optim::{Optimizer, OptimizerConfig};
pub use tasks::{adding_batch, step_rng, CharCorpus, ADDING_BASELINE_MSE, BUILTIN_TEXT};
pub use trainer::{Metrics, Task, TrainConfig, Trainer};
