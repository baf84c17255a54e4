//! Plain-Rust f64 implementations that read like the equations; the oracle of the tests.
//!
//! Layouts follow PyTorch: sequences `[T, B, F]`, weights `weight_ih [4H, I]`,
//! `weight_hh [4H, H]`, biases `[4H]`, gate rows in the order i, f, g, o.

mod clip;
mod lstm;
mod optim;
mod rnn;
mod stack;

pub use clip::{clip_grad_norm, ClipOutcome};
pub use lstm::{lstm_backward, lstm_forward, LstmForward, LstmGrads, LstmParams};
pub use optim::{adam_step, sgd_step};
pub use rnn::{rnn_backward, rnn_forward};
pub use stack::{stack_backward, stack_forward, StackGrads, StackOutput, StackShape};

pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}
