//! What the forward and backward passes take and return.

use super::config::LstmConfig;
use crate::gpu::Tensor;
use std::sync::Arc;

/// Options of one forward pass.
#[derive(Default, Clone, Copy)]
pub struct ForwardOptions<'a> {
    /// Initial hidden state `[L·D, B, R]`; zeros when `None`.
    pub h0: Option<&'a Tensor>,
    /// Initial cell state `[L·D, B, H]` (LSTM); zeros when `None`.
    pub c0: Option<&'a Tensor>,
    /// Length of each sequence (`[B]`, each in 1..=T), like a `PackedSequence`: outputs past a
    /// sequence's end are zero and `h_n`, `c_n` hold each sequence's state at its own end.
    pub lengths: Option<&'a [usize]>,
    /// Keep what the backward pass needs (and apply dropout between layers).
    pub train: bool,
}

impl<'a> ForwardOptions<'a> {
    /// Inference from the initial states `h0`, `c0` (zeros when `None`).
    pub fn states(h0: Option<&'a Tensor>, c0: Option<&'a Tensor>) -> ForwardOptions<'a> {
        ForwardOptions {
            h0,
            c0,
            ..Default::default()
        }
    }
}

/// Gradients of a loss with respect to the forward pass's outputs; `None` means zeros.
#[derive(Default, Clone, Copy)]
pub struct OutputGrads<'a> {
    /// `dL/dy`, shaped like `y`.
    pub dy: Option<&'a Tensor>,
    /// `dL/dh_n`, `[L·D, B, R]`.
    pub dh_n: Option<&'a Tensor>,
    /// `dL/dc_n`, `[L·D, B, H]` (LSTM).
    pub dc_n: Option<&'a Tensor>,
}

impl<'a> OutputGrads<'a> {
    /// Only `dL/dy` (the final states' gradients zero).
    pub fn dy(dy: &'a Tensor) -> OutputGrads<'a> {
        OutputGrads {
            dy: Some(dy),
            ..Default::default()
        }
    }
}

/// What the forward pass returns. Nothing is read back until asked (`Tensor::to_vec`).
pub struct LstmOutput {
    /// Outputs `[T, B, D·R]` (`[B, T, D·R]` batch-first): the last layer's hidden states.
    pub y: Tensor,
    /// Final hidden states `[L·D, B, R]`.
    pub h_n: Tensor,
    /// Final cell states `[L·D, B, H]` (zeros for cells without a cell state).
    pub c_n: Tensor,
    /// What the backward pass needs (`Some` only when training).
    pub cache: Option<ForwardCache>,
}

/// The activations a training forward pass keeps on the GPU for [`Lstm::backward`].
///
/// [`Lstm::backward`]: super::Lstm::backward
pub struct ForwardCache {
    /// The model that made it and its configuration.
    pub(super) model: u64,
    pub(super) config: LstmConfig,
    pub(super) steps: usize,
    pub(super) batch: usize,
    pub(super) layers: Vec<LayerCache>,
    /// The forward state buffer (h0 and c0 are read by the backward pass).
    pub(super) state: Arc<wgpu::Buffer>,
    pub(super) lengths: Option<Arc<wgpu::Buffer>>,
}

pub(super) struct LayerCache {
    /// The layer's time-major input `[T, B, in]` (after dropout).
    pub input: Arc<wgpu::Buffer>,
    pub input_offset: usize,
    /// The h history (see `Plan::hs_len`) and cell states of every step.
    pub hs: Arc<wgpu::Buffer>,
    pub cs: Arc<wgpu::Buffer>,
    /// Per direction, what the cell keeps for backward `[T, B, kept·H]`.
    pub gates: Vec<Arc<wgpu::Buffer>>,
    /// Seed of the dropout applied to this layer's input.
    pub dropout_seed: Option<u32>,
}

impl ForwardCache {
    /// Bytes held for the backward pass beyond the outputs: what the cells keep and the cell
    /// states of every layer and direction, the hidden states of the layers below the last
    /// and the dropped-out inputs.
    pub fn activation_bytes(&self) -> u64 {
        let last = self.layers.len() - 1;
        self.layers
            .iter()
            .enumerate()
            .map(|(l, c)| {
                let gates: u64 = c.gates.iter().map(|g| g.size()).sum();
                let hs = if l == last { 0 } else { c.hs.size() };
                let dropped = if c.dropout_seed.is_some() {
                    c.input.size()
                } else {
                    0
                };
                gates + c.cs.size() + hs + dropped
            })
            .sum()
    }
}

/// Gradients with respect to the forward pass's inputs. Parameter gradients go to the gradient
/// arena ([`Lstm::params`](super::Lstm::params)).
pub struct BackwardOutput {
    /// `dL/dx`, shaped like `x`.
    pub dx: Tensor,
    /// `dL/dh0`, `[L·D, B, R]`.
    pub dh0: Tensor,
    /// `dL/dc0`, `[L·D, B, H]`.
    pub dc0: Tensor,
}

/// Per-step measurements of the gradient flowing back through time, for a loss at the last
/// step (see [`Lstm::backward_probed`](super::Lstm::backward_probed)). Index k is the timestep;
/// norms are over the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct GradientProbes {
    /// ‖∂L/∂h_k‖₂.
    pub dh_norm: Vec<f32>,
    /// ‖∂L/∂c_k‖₂ (LSTM).
    pub dc_norm: Vec<f32>,
    /// ‖t₀(k)‖₂: the explicit path through the cell states only.
    pub path_norm: Vec<f32>,
    /// Mean over the batch and units of the forget-gate product f_{T-1} ⊙ … ⊙ f_{k+1}.
    pub forget_product_mean: Vec<f32>,
}

/// How many compute dispatches each operation of a model records for T steps (each operation
/// is one submit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchCounts {
    /// Forward, per layer and direction: the input-projection GEMM plus the recurrence: with
    /// the step kernels one fused step per timestep (two with projections: the cell's and the
    /// projection's); with the sequence kernel one per chunk of steps (one unless T is longer
    /// than an invocation may loop).
    pub forward: usize,
    /// Backward, per layer and direction: the recurrence (the step kernels' steps plus one for
    /// dh0; the sequence kernel's chunks, dh0 in the last), the GEMMs (dW_ih, dW_hh as the
    /// steps after the first plus the first step's initial state, dx, and dW_hr with
    /// projections) and the column sums of the biases (one; two for the GRU, whose input-side
    /// and recurrent-side gradients differ).
    pub backward: usize,
    /// Gradient clipping, for the whole model: sum of squares, norm and coefficient, scale: 3.
    pub clip: usize,
}

impl DispatchCounts {
    /// The counts of a one-layer, one-direction LSTM with biases over `steps` timesteps with
    /// the step kernels: forward T + 1, backward T + 6, clip 3.
    pub fn for_steps(steps: usize) -> DispatchCounts {
        DispatchCounts::for_config(&LstmConfig::new(1, 1), steps)
    }

    /// The counts per layer and direction of a model of `config` over `steps` timesteps with
    /// the step kernels ([`Lstm::dispatch_counts`](crate::Lstm::dispatch_counts) gives the
    /// recurrence a call takes).
    pub fn for_config(config: &LstmConfig, steps: usize) -> DispatchCounts {
        let per_step = if config.proj_size > 0 { 2 } else { 1 };
        DispatchCounts::with_recurrence(config, per_step * steps, per_step * steps + 1)
    }

    /// The counts of a model of `config` whose recurrence records `forward` dispatches
    /// forward and `backward` (dh0 included) backward, per layer and direction.
    pub(crate) fn with_recurrence(
        config: &LstmConfig,
        forward: usize,
        backward: usize,
    ) -> DispatchCounts {
        let gemms = 4 + usize::from(config.proj_size > 0);
        let sides = if config.cell.separate_input_grads() {
            2
        } else {
            1
        };
        let bias_sums = if config.bias { sides } else { 0 };
        DispatchCounts {
            forward: 1 + forward,
            backward: backward + gemms + bias_sums,
            clip: 3,
        }
    }
}
