//! Options several subcommands share: the cell of the model.

use wgpu_lstm::{Cell, Error, LstmConfig, Nonlinearity, Result};

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub(crate) enum CellArg {
    /// nn.LSTM.
    Lstm,
    /// nn.GRU.
    Gru,
    /// nn.RNN.
    Rnn,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub(crate) enum NonlinearityArg {
    Tanh,
    Relu,
}

impl From<CellArg> for Cell {
    fn from(c: CellArg) -> Cell {
        match c {
            CellArg::Lstm => Cell::Lstm,
            CellArg::Gru => Cell::Gru,
            CellArg::Rnn => Cell::Rnn,
        }
    }
}

impl From<NonlinearityArg> for Nonlinearity {
    fn from(n: NonlinearityArg) -> Nonlinearity {
        match n {
            NonlinearityArg::Tanh => Nonlinearity::Tanh,
            NonlinearityArg::Relu => Nonlinearity::Relu,
        }
    }
}

/// The cell of a model: given for a new one, checked against a file's otherwise.
#[derive(clap::Args, Clone, Copy, Debug)]
pub(crate) struct CellArgs {
    /// The recurrent cell [default: lstm; for a file, what it holds].
    #[arg(long, value_enum)]
    pub cell: Option<CellArg>,
    /// The LSTM's projection size P < hidden size (nn.LSTM(proj_size=P)) [default: 0, none;
    /// for a file, what it holds].
    #[arg(long)]
    pub proj_size: Option<usize>,
    /// The RNN's nonlinearity (nn.RNN(nonlinearity=…)); a state dict does not record it
    /// [default: tanh].
    #[arg(long, value_enum)]
    pub nonlinearity: Option<NonlinearityArg>,
}

impl CellArgs {
    /// The settings for a new model.
    pub fn resolve(&self) -> (Cell, usize, Nonlinearity) {
        (
            self.cell.map_or(Cell::Lstm, Cell::from),
            self.proj_size.unwrap_or(0),
            self.nonlinearity
                .map_or(Nonlinearity::Tanh, Nonlinearity::from),
        )
    }

    /// `config` (what `source` holds) with the nonlinearity set; an error if the options given
    /// contradict it.
    pub fn apply_to(&self, config: LstmConfig, source: &str) -> Result<LstmConfig> {
        self.check(config.cell, config.proj_size, source)?;
        let config = match self.nonlinearity {
            Some(n) => config.with_nonlinearity(n.into()),
            None => config,
        };
        config.validate()?;
        Ok(config)
    }

    /// An error if the options given contradict a model of `cell` and `proj_size` in `source`.
    pub fn check(&self, cell: Cell, proj_size: usize, source: &str) -> Result<()> {
        let holds = || {
            let proj = if proj_size > 0 {
                format!(" with proj_size {proj_size}")
            } else {
                String::new()
            };
            format!("{source} holds an nn.{}{proj}", cell.name())
        };
        if let Some(given) = self.cell.map(Cell::from).filter(|&c| c != cell) {
            return Err(Error::Invalid(format!(
                "--cell {}: {}; drop the option or give another file",
                given.name().to_lowercase(),
                holds()
            )));
        }
        if let Some(p) = self.proj_size.filter(|&p| p != proj_size) {
            return Err(Error::Invalid(format!("--proj-size {p}: {}", holds())));
        }
        Ok(())
    }
}
