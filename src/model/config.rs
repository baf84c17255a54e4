//! The shape of an LSTM, as `torch.nn.LSTM` takes it, and PyTorch's parameter names.

use crate::error::{Error, Result};
pub use crate::kernels::{Cell, Nonlinearity};

/// The options of `torch.nn.LSTM(input_size, hidden_size, num_layers, bias, batch_first,
/// dropout, bidirectional, proj_size)`, of `nn.GRU` ([`Cell::Gru`]) or of
/// `nn.RNN(nonlinearity=…)` ([`Cell::Rnn`]), plus the seed of the initial weights and of
/// dropout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LstmConfig {
    /// LSTM (default), GRU or vanilla RNN.
    pub cell: Cell,
    /// The RNN's nonlinearity (tanh or relu; the other cells have none).
    pub nonlinearity: Nonlinearity,
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
    /// LSTM only: the size P of the projected hidden state (`h_t = W_hr (o_t ⊙ tanh(c_t))`),
    /// 0 for none. With P > 0, h is `[.., P]` and c stays `[.., H]`; P < H.
    pub proj_size: usize,
    /// Seed of the initial weights and of the dropout masks.
    pub seed: u64,
}

impl LstmConfig {
    /// One layer from `input_size` features to `hidden_size` units, with biases, sequence-major,
    /// no dropout, unidirectional, seed 0 (PyTorch's defaults).
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        LstmConfig {
            cell: Cell::Lstm,
            nonlinearity: Nonlinearity::Tanh,
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
            proj_size: 0,
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

    /// Another cell: `nn.GRU` or `nn.RNN` instead of `nn.LSTM`.
    pub fn with_cell(mut self, cell: Cell) -> Self {
        self.cell = cell;
        self
    }

    /// The RNN's nonlinearity (`nn.RNN(nonlinearity='relu')`).
    pub fn with_nonlinearity(mut self, nonlinearity: Nonlinearity) -> Self {
        self.nonlinearity = nonlinearity;
        self
    }

    /// LSTM with projections (`nn.LSTM(proj_size=P)`), P < H; 0 for none.
    pub fn with_proj_size(mut self, proj_size: usize) -> Self {
        self.proj_size = proj_size;
        self
    }

    /// Gate rows per hidden unit in the weights: 4 for the LSTM, 3 for the GRU, 1 for the RNN.
    pub fn gates(&self) -> usize {
        self.cell.gates()
    }

    /// The width R of h (and of each direction's output): `proj_size` if set, else
    /// `hidden_size` (PyTorch's `real_hidden_size`).
    pub fn output_size(&self) -> usize {
        if self.proj_size > 0 {
            self.proj_size
        } else {
            self.hidden_size
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

    /// Input features of layer `layer`: I for the first, D·R for the others.
    pub fn layer_input_size(&self, layer: usize) -> usize {
        if layer == 0 {
            self.input_size
        } else {
            self.directions() * self.output_size()
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
        if self.proj_size > 0 && self.cell != Cell::Lstm {
            return Err(Error::Invalid(format!(
                "proj_size is an option of nn.LSTM only, not of nn.{}",
                self.cell.name()
            )));
        }
        if self.nonlinearity == Nonlinearity::Relu && self.cell != Cell::Rnn {
            return Err(Error::Invalid(format!(
                "nonlinearity is an option of nn.RNN only, not of nn.{}",
                self.cell.name()
            )));
        }
        if self.proj_size >= self.hidden_size && self.proj_size > 0 {
            // PyTorch: "proj_size has to be smaller than hidden_size".
            return Err(Error::Invalid(format!(
                "proj_size has to be smaller than hidden_size ({} ≥ {})",
                self.proj_size, self.hidden_size
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
        let rows = self.gates() * self.hidden_size;
        let mut out = Vec::new();
        for layer in 0..self.num_layers {
            for direction in 0..self.directions() {
                let n = ParamNames::new(layer, direction);
                out.push((n.weight_ih, vec![rows, self.layer_input_size(layer)]));
                out.push((n.weight_hh, vec![rows, self.output_size()]));
                if self.bias {
                    out.push((n.bias_ih, vec![rows]));
                    out.push((n.bias_hh, vec![rows]));
                }
                if self.proj_size > 0 {
                    out.push((n.weight_hr, vec![self.proj_size, self.hidden_size]));
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
    /// `weight_hh_l{k}{suffix}`, `[4H, R]`.
    pub weight_hh: String,
    /// `bias_ih_l{k}{suffix}`, `[4H]`.
    pub bias_ih: String,
    /// `bias_hh_l{k}{suffix}`, `[4H]`.
    pub bias_hh: String,
    /// `weight_hr_l{k}{suffix}`, `[P, H]` (LSTM with proj_size).
    pub weight_hr: String,
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
            weight_hr: format!("weight_hr_l{layer}{suffix}"),
        }
    }
}
