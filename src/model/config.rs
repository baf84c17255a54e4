//! The shape of an LSTM, as `torch.nn.LSTM` takes it, and PyTorch's parameter names.

use crate::error::{Error, Result};

/// The recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cell {
    /// PyTorch's `nn.LSTM`: four gates (i, f, g, o) and a cell state.
    #[default]
    Lstm,
    /// PyTorch's `nn.RNN` with tanh: `h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`, the
    /// baseline the gradient-flow lab compares against. No cell state (`c_n` stays zero).
    Rnn,
}

/// The options of `torch.nn.LSTM(input_size, hidden_size, num_layers, bias, batch_first,
/// dropout, bidirectional)` (or of `nn.RNN` with [`Cell::Rnn`]), plus the seed of the initial
/// weights and of dropout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LstmConfig {
    /// LSTM (default) or vanilla tanh RNN.
    pub cell: Cell,
    /// Features per input timestep, I.
    pub input_size: usize,
    /// Hidden units per direction, H.
    pub hidden_size: usize,
    /// Stacked layers, L ≥ 1. Layer k > 0 reads layer k-1's output (D·H features).
    pub num_layers: usize,
    /// Whether the layers have the bias vectors `bias_ih`, `bias_hh`.
    pub bias: bool,
    /// Whether sequences are `[B, T, F]` instead of `[T, B, F]` (states stay `[L·D, B, H]`).
    pub batch_first: bool,
    /// Dropout probability on the outputs of every layer but the last, in training only.
    pub dropout: f32,
    /// Whether each layer also runs a reverse-time direction (D = 2).
    pub bidirectional: bool,
    /// Seed of the initial weights and of the dropout masks.
    pub seed: u64,
}

impl LstmConfig {
    /// One layer from `input_size` features to `hidden_size` units, with biases, sequence-major,
    /// no dropout, unidirectional, seed 0 (PyTorch's defaults).
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        LstmConfig {
            cell: Cell::Lstm,
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
            seed: 0,
        }
    }

    /// With `num_layers` stacked layers.
    pub fn with_layers(mut self, num_layers: usize) -> Self {
        self.num_layers = num_layers;
        self
    }

    /// With or without the bias vectors.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Batch-first (`[B, T, F]`) sequences.
    pub fn with_batch_first(mut self, batch_first: bool) -> Self {
        self.batch_first = batch_first;
        self
    }

    /// Dropout between layers (training only).
    pub fn with_dropout(mut self, dropout: f32) -> Self {
        self.dropout = dropout;
        self
    }

    /// Bidirectional layers.
    pub fn with_bidirectional(mut self, bidirectional: bool) -> Self {
        self.bidirectional = bidirectional;
        self
    }

    /// A vanilla tanh RNN (`nn.RNN`) instead of an LSTM.
    pub fn with_cell(mut self, cell: Cell) -> Self {
        self.cell = cell;
        self
    }

    /// Gate rows per hidden unit in the weights: 4 for the LSTM, 1 for the RNN.
    pub fn gates(&self) -> usize {
        match self.cell {
            Cell::Lstm => 4,
            Cell::Rnn => 1,
        }
    }

    /// Another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Number of directions D (1 or 2).
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Input features of layer `layer`: I for the first, D·H for the others.
    pub fn layer_input_size(&self, layer: usize) -> usize {
        if layer == 0 {
            self.input_size
        } else {
            self.directions() * self.hidden_size
        }
    }

    /// Checks the sizes and the dropout probability.
    pub fn validate(&self) -> Result<()> {
        if self.input_size == 0 || self.hidden_size == 0 || self.num_layers == 0 {
            return Err(Error::Invalid(format!(
                "input_size, hidden_size and num_layers must be at least 1, got {}, {} and {}",
                self.input_size, self.hidden_size, self.num_layers
            )));
        }
        // Bounds that keep every size product far from overflow; the device's buffer limits
        // are far tighter in practice and are checked where buffers are made.
        const MAX: usize = 1 << 20;
        if self.input_size > MAX || self.hidden_size > MAX || self.num_layers > 1024 {
            return Err(Error::Invalid(format!(
                "sizes too large: input_size {}, hidden_size {} (at most {MAX}), num_layers {} (at most 1024)",
                self.input_size, self.hidden_size, self.num_layers
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Invalid(format!(
                "dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        Ok(())
    }

    /// Every parameter as (PyTorch name, shape), in `state_dict` order.
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let h4 = self.gates() * self.hidden_size;
        let mut out = Vec::new();
        for layer in 0..self.num_layers {
            for direction in 0..self.directions() {
                let n = ParamNames::new(layer, direction);
                out.push((n.weight_ih, vec![h4, self.layer_input_size(layer)]));
                out.push((n.weight_hh, vec![h4, self.hidden_size]));
                if self.bias {
                    out.push((n.bias_ih, vec![h4]));
                    out.push((n.bias_hh, vec![h4]));
                }
            }
        }
        out
    }
}

/// PyTorch's names of one layer and direction's parameters: `weight_ih_l{k}[_reverse]`, ….
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamNames {
    /// `weight_ih_l{k}{suffix}`, `[4H, input]`.
    pub weight_ih: String,
    /// `weight_hh_l{k}{suffix}`, `[4H, H]`.
    pub weight_hh: String,
    /// `bias_ih_l{k}{suffix}`, `[4H]`.
    pub bias_ih: String,
    /// `bias_hh_l{k}{suffix}`, `[4H]`.
    pub bias_hh: String,
}

impl ParamNames {
    /// The names of layer `layer`, direction `direction` (1 = reverse).
    pub fn new(layer: usize, direction: usize) -> ParamNames {
        let suffix = if direction == 1 { "_reverse" } else { "" };
        ParamNames {
            weight_ih: format!("weight_ih_l{layer}{suffix}"),
            weight_hh: format!("weight_hh_l{layer}{suffix}"),
            bias_ih: format!("bias_ih_l{layer}{suffix}"),
            bias_hh: format!("bias_hh_l{layer}{suffix}"),
        }
    }
}
