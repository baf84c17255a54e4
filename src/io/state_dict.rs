//! PyTorch `state_dict`s of `nn.LSTM` in and out.

use super::{read_tensors, write_tensors, HostTensor, TensorMap};
use crate::error::{fmt_shape, Error, Result};
use crate::gpu::Gpu;
use crate::model::{Cell, Lstm, LstmConfig};
use std::path::Path;

impl LstmConfig {
    /// Infers the cell (`weight_hh` with 4H rows: LSTM, H rows: RNN), layers, directions, sizes
    /// and bias from PyTorch's parameter names and shapes.
    /// `batch_first`, dropout and seed are not in a state dict: they keep their defaults.
    pub fn from_state_dict(tensors: &TensorMap) -> Result<LstmConfig> {
        let shape = |name: &str| tensors.get(name).map(|t| t.shape.as_slice());
        let (Some(w_ih), Some(w_hh)) = (shape("weight_ih_l0"), shape("weight_hh_l0")) else {
            let names: Vec<&String> = tensors.keys().collect();
            return Err(Error::Invalid(format!(
                "not an nn.LSTM state dict: `weight_ih_l0` and `weight_hh_l0` are required (found {names:?})"
            )));
        };
        if w_hh.len() != 2 || w_ih.len() != 2 {
            return Err(Error::Shape {
                tensor: "weight_hh_l0".into(),
                expected: "[4H, H] and weight_ih_l0 [4H, I]".into(),
                given: format!("{} and {}", fmt_shape(w_hh), fmt_shape(w_ih)),
            });
        }
        let hidden = w_hh[1];
        if hidden > 1 << 20 {
            return Err(Error::Invalid(format!(
                "weight_hh_l0 has {hidden} columns: hidden_size too large"
            )));
        }
        // weight_hh has 4H rows in an nn.LSTM (gates i, f, g, o) and H rows in an nn.RNN.
        let cell = match w_hh[0] {
            rows if rows == 4 * hidden => Cell::Lstm,
            rows if rows == hidden => Cell::Rnn,
            _ => {
                return Err(Error::Shape {
                    tensor: "weight_hh_l0".into(),
                    expected: format!(
                        "[4·H, H] = [{}, {hidden}] (LSTM) or [H, H] (RNN)",
                        4 * hidden
                    ),
                    given: fmt_shape(w_hh),
                })
            }
        };
        if hidden == 0 {
            return Err(Error::Invalid("weight_hh_l0 has zero columns".into()));
        }
        let num_layers = (0..)
            .take_while(|k| tensors.contains_key(&format!("weight_ih_l{k}")))
            .count();
        let config = LstmConfig::new(w_ih[1], hidden)
            .with_cell(cell)
            .with_layers(num_layers)
            .with_bidirectional(tensors.contains_key("weight_ih_l0_reverse"))
            .with_bias(tensors.contains_key("bias_ih_l0"));
        config.validate()?;
        Ok(config)
    }
}

impl Lstm {
    /// Builds an LSTM from a PyTorch `state_dict` (configuration inferred from the names and
    /// shapes). Missing, extra, misshaped or non-float32 tensors are errors naming the tensor.
    pub fn from_state_dict(gpu: &Gpu, tensors: &TensorMap, batch_first: bool) -> Result<Lstm> {
        let config = LstmConfig::from_state_dict(tensors)?.with_batch_first(batch_first);
        let expected = config.parameter_shapes();
        let extra: Vec<&String> = tensors
            .keys()
            .filter(|k| !expected.iter().any(|(n, _)| n == *k))
            .collect();
        if !extra.is_empty() {
            return Err(Error::Invalid(format!(
                "unexpected tensors {extra:?} for an nn.{:?} with {} layer(s), {} direction(s), bias={} \
                 (proj_size and other modules are not supported)",
                config.cell,
                config.num_layers,
                config.directions(),
                config.bias
            )));
        }
        for (name, shape) in &expected {
            let t = tensors.get(name).ok_or_else(|| {
                Error::Invalid(format!("missing tensor `{name}` {}", fmt_shape(shape)))
            })?;
            if &t.shape != shape {
                return Err(Error::Shape {
                    tensor: name.clone(),
                    expected: fmt_shape(shape),
                    given: fmt_shape(&t.shape),
                });
            }
            t.as_f32(name)?;
        }
        let lstm = Lstm::new(gpu, config)?;
        for (name, _) in &expected {
            lstm.params().set(name, tensors[name].as_f32(name)?)?;
        }
        Ok(lstm)
    }

    /// Reads a safetensors `state_dict` file (see [`Lstm::from_state_dict`]).
    pub fn load(gpu: &Gpu, path: &Path, batch_first: bool) -> Result<Lstm> {
        Lstm::from_state_dict(gpu, &read_tensors(path)?, batch_first)
    }

    /// The parameters as a PyTorch `state_dict` (reads them back from the GPU).
    pub fn state_dict(&self) -> Result<TensorMap> {
        let mut out = TensorMap::new();
        for v in self.params().views() {
            out.insert(
                v.name.clone(),
                HostTensor::f32(&v.shape, self.params().get(&v.name)?),
            );
        }
        Ok(out)
    }

    /// Writes the `state_dict` as safetensors, atomically; `torch.nn.LSTM.load_state_dict(
    /// safetensors.torch.load_file(path))` reads it.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_tensors(path, &self.state_dict()?)
    }
}
