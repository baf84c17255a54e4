//! The recurrent cells: which pointwise WGSL each one contributes to the step templates.

/// The recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Cell {
    /// PyTorch's `nn.LSTM`: four gates (i, f, g, o) and a cell state.
    #[default]
    Lstm,
    /// PyTorch's `nn.GRU`: gates r, z, n; `h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}`. No cell state
    /// (`c_n` stays zero).
    Gru,
    /// PyTorch's `nn.RNN`: `h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`, act = tanh or
    /// relu ([`Nonlinearity`]); the baseline the gradient-flow lab compares against. No cell
    /// state (`c_n` stays zero).
    Rnn,
}

/// The nonlinearity of a vanilla RNN (`nn.RNN(nonlinearity=…)`). PyTorch does not save it in
/// a state dict: it must be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Nonlinearity {
    /// `tanh` (PyTorch's default).
    #[default]
    Tanh,
    /// `relu`.
    Relu,
}

impl Cell {
    /// Gate rows per hidden unit in the weights: 4 for the LSTM, 3 for the GRU, 1 for the RNN.
    pub fn gates(&self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
            Cell::Rnn => 1,
        }
    }

    /// Values per unit and step the forward pass keeps for the backward pass (the LSTM's
    /// activated gates; the GRU's r, z, n and W_hn h + b_hn; the RNN's backward reads its
    /// output).
    pub fn kept(&self) -> usize {
        match self {
            Cell::Lstm | Cell::Gru => 4,
            Cell::Rnn => 0,
        }
    }

    /// Whether the gradients of the input-side pre-activations (`W_ih x + b_ih`) differ from
    /// the recurrent side's (`W_hh h + b_hh`): the GRU's n gate multiplies the latter by r.
    pub fn separate_input_grads(&self) -> bool {
        matches!(self, Cell::Gru)
    }

    /// Whether the hoisted input projection may add `b_hh` (else the cell adds it: the GRU's
    /// b_hn stays inside r ⊙ (…), so its pointwise part reads all of b_hh).
    pub fn folds_recurrent_bias(&self) -> bool {
        !matches!(self, Cell::Gru)
    }

    /// The cell's initial state its backward pass reads at the first step: c0 for the LSTM,
    /// h0 for the GRU (its dz needs h_prev), nothing for the RNN.
    pub fn backward_reads_h0(&self) -> bool {
        matches!(self, Cell::Gru)
    }

    /// Whether the cell has a cell state `c` (else `c_n` is zeros and `c0` is not read).
    pub fn has_cell_state(&self) -> bool {
        matches!(self, Cell::Lstm)
    }

    /// PyTorch's module name without `nn.`: `LSTM`, `GRU`, `RNN`.
    pub fn name(&self) -> &'static str {
        match self {
            Cell::Lstm => "LSTM",
            Cell::Gru => "GRU",
            Cell::Rnn => "RNN",
        }
    }

    /// The pointwise part of the forward step (`shaders/cells/`).
    pub(crate) fn forward_wgsl(&self) -> &'static str {
        match self {
            Cell::Lstm => include_str!("../../shaders/cells/lstm_forward.wgsl"),
            Cell::Gru => include_str!("../../shaders/cells/gru_forward.wgsl"),
            Cell::Rnn => include_str!("../../shaders/cells/rnn_forward.wgsl"),
        }
    }

    /// The pointwise part of the backward step.
    pub(crate) fn backward_wgsl(&self) -> &'static str {
        match self {
            Cell::Lstm => include_str!("../../shaders/cells/lstm_backward.wgsl"),
            Cell::Gru => include_str!("../../shaders/cells/gru_backward.wgsl"),
            Cell::Rnn => include_str!("../../shaders/cells/rnn_backward.wgsl"),
        }
    }
}
