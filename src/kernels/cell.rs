//! The recurrent cells: which pointwise WGSL each one contributes to the step templates.

/// The recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Cell {
    /// PyTorch's `nn.LSTM`: four gates (i, f, g, o) and a cell state.
    #[default]
    Lstm,
    /// PyTorch's `nn.RNN` with tanh: `h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`, the
    /// baseline the gradient-flow lab compares against. No cell state (`c_n` stays zero).
    Rnn,
}

impl Cell {
    /// Gate rows per hidden unit in the weights: 4 for the LSTM, 1 for the RNN.
    pub fn gates(&self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Rnn => 1,
        }
    }

    /// Values per unit and step the forward pass keeps for the backward pass (the LSTM's
    /// activated gates; the RNN's backward reads its output).
    pub fn kept(&self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Rnn => 0,
        }
    }

    /// Whether the cell has a cell state `c` (else `c_n` is zeros and `c0` is not read).
    pub fn has_cell_state(&self) -> bool {
        matches!(self, Cell::Lstm)
    }

    /// PyTorch's module name without `nn.`: `LSTM`, `RNN`.
    pub fn name(&self) -> &'static str {
        match self {
            Cell::Lstm => "LSTM",
            Cell::Rnn => "RNN",
        }
    }

    /// The pointwise part of the forward step (`shaders/cells/`).
    pub(crate) fn forward_wgsl(&self) -> &'static str {
        match self {
            Cell::Lstm => include_str!("../../shaders/cells/lstm_forward.wgsl"),
            Cell::Rnn => include_str!("../../shaders/cells/rnn_forward.wgsl"),
        }
    }

    /// The pointwise part of the backward step.
    pub(crate) fn backward_wgsl(&self) -> &'static str {
        match self {
            Cell::Lstm => include_str!("../../shaders/cells/lstm_backward.wgsl"),
            Cell::Rnn => include_str!("../../shaders/cells/rnn_backward.wgsl"),
        }
    }
}
