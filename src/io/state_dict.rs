//! PyTorch `state_dict`s of `nn.LSTM` in and out.

use super::{HostTensor, TensorMap};
use crate::error::{fmt_shape, Error, Result};
use crate::gpu::Gpu;
use crate::model::{Cell, Lstm, LstmConfig};
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

impl LstmConfig {
    /// Infers the cell, layers, directions, sizes, bias and proj_size from PyTorch's parameter
    /// names and shapes: `weight_hh_l0` has G·H rows (4: LSTM, 3: GRU, 1: RNN) and H columns,
    /// or, with `weight_hr_l0 [P, H]`, 4·H rows and P columns (an LSTM with proj_size).
    /// `batch_first`, dropout, seed and the RNN's nonlinearity are not in a state dict: they
    /// keep their defaults (set them with the `with_…` builders).
    pub fn from_state_dict(tensors: &TensorMap) -> Result<LstmConfig> {
        let shape = |name: &str| tensors.get(name).map(|t| t.shape.as_slice());
        let (Some(w_ih), Some(w_hh)) = (shape("weight_ih_l0"), shape("weight_hh_l0")) else {
            let names: Vec<&String> = tensors.keys().collect();
            return Err(Error::Invalid(format!(
                "not a state dict of nn.LSTM, nn.GRU or nn.RNN: `weight_ih_l0` and `weight_hh_l0` \
                 are required (found {names:?})"
            )));
        };
        let fits_no_cell = |given: &[usize]| Error::Shape {
            tensor: "weight_hh_l0".into(),
            expected: "[4·H, H] (nn.LSTM), [3·H, H] (nn.GRU), [H, H] (nn.RNN), or [4·H, P] \
                       with weight_hr_l0 [P, H], P < H (nn.LSTM with proj_size)"
                .into(),
            given: fmt_shape(given),
        };
        if w_hh.len() != 2 || w_ih.len() != 2 || w_hh[1] == 0 || w_ih[0] != w_hh[0] {
            return Err(Error::Shape {
                tensor: "weight_ih_l0".into(),
                expected: "[G·H, I], with as many rows as weight_hh_l0 [G·H, R]".into(),
                given: format!("{} (weight_hh_l0 {})", fmt_shape(w_ih), fmt_shape(w_hh)),
            });
        }
        let (rows, columns) = (w_hh[0], w_hh[1]);
        let (cell, hidden, proj) = match shape("weight_hr_l0") {
            Some(&[p, h]) if p == columns && h.checked_mul(4) == Some(rows) && p < h => {
                (Cell::Lstm, h, p)
            }
            Some(_) => return Err(fits_no_cell(w_hh)),
            None => {
                let h = columns;
                let cell = match [4, 3, 1].map(|g| h.checked_mul(g) == Some(rows)) {
                    [true, _, _] => Cell::Lstm,
                    [_, true, _] => Cell::Gru,
                    [_, _, true] => Cell::Rnn,
                    _ => return Err(fits_no_cell(w_hh)),
                };
                (cell, h, 0)
            }
        };
        if hidden > 1 << 20 {
            return Err(Error::Invalid(format!(
                "weight_hh_l0 implies hidden_size {hidden}: too large"
            )));
        }
        let num_layers = (0..)
            .take_while(|k| tensors.contains_key(&format!("weight_ih_l{k}")))
            .count();
        let config = LstmConfig::new(w_ih[1], hidden)
            .with_cell(cell)
            .with_proj_size(proj)
            .with_layers(num_layers)
            .with_bidirectional(tensors.contains_key("weight_ih_l0_reverse"))
            .with_bias(tensors.contains_key("bias_ih_l0"));
        config.validate()?;
        Ok(config)
    }
}

impl Lstm {
    /// Builds a model from a PyTorch `state_dict` (configuration inferred from the names and
    /// shapes, see [`LstmConfig::from_state_dict`]). Missing, extra, misshaped or non-float32
    /// tensors are errors naming the tensor.
    pub fn from_state_dict(gpu: &Gpu, tensors: &TensorMap, batch_first: bool) -> Result<Lstm> {
        let config = LstmConfig::from_state_dict(tensors)?.with_batch_first(batch_first);
        Lstm::from_state_dict_with(gpu, tensors, config)
    }

    /// Builds a model of `config` (e.g. [`LstmConfig::from_state_dict`] with the options a
    /// state dict does not hold, such as the RNN's nonlinearity) from the tensors of a
    /// `state_dict`, which must be exactly that model's.
    pub fn from_state_dict_with(
        gpu: &Gpu,
        tensors: &TensorMap,
        config: LstmConfig,
    ) -> Result<Lstm> {
        let expected = config.parameter_shapes();
        let extra: Vec<&String> = tensors
            .keys()
            .filter(|k| !expected.iter().any(|(n, _)| n == *k))
            .collect();
        if !extra.is_empty() {
            return Err(Error::Invalid(format!(
                "unexpected tensors {extra:?} for an nn.{} with {} layer(s), {} direction(s), bias={}, \
                 proj_size={} (other modules are not supported)",
                config.cell.name(),
                config.num_layers,
                config.directions(),
                config.bias,
                config.proj_size
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
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(gpu: &Gpu, path: &Path, batch_first: bool) -> Result<Lstm> {
        Lstm::load_with(gpu, path, |config| config.with_batch_first(batch_first))
    }

    /// Reads a safetensors `state_dict` file; `options` completes the inferred configuration
    /// with what a state dict does not hold, e.g.
    /// `|c| c.with_nonlinearity(Nonlinearity::Relu)` for `nn.RNN(nonlinearity='relu')`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_with(
        gpu: &Gpu,
        path: &Path,
        options: impl FnOnce(LstmConfig) -> LstmConfig,
    ) -> Result<Lstm> {
        let tensors = super::read_tensors(path)?;
        let config = options(LstmConfig::from_state_dict(&tensors)?);
        Lstm::from_state_dict_with(gpu, &tensors, config)
    }

    /// The parameters as a PyTorch `state_dict` (reads them back from the GPU).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn state_dict(&self) -> Result<TensorMap> {
        crate::gpu::block(self.state_dict_async())
    }

    /// [`Lstm::state_dict`] as a future: one readback of the whole arena. With
    /// [`serialize_tensors`](crate::io::serialize_tensors) it gives the bytes of a safetensors
    /// file, which is how the web saves a model.
    pub async fn state_dict_async(&self) -> Result<TensorMap> {
        let params = self.params();
        let all = params.all_params_async().await?;
        let mut out = TensorMap::new();
        for v in params.views() {
            let values = all[v.offset..v.offset + v.len()].to_vec();
            out.insert(v.name.clone(), HostTensor::f32(&v.shape, values));
        }
        Ok(out)
    }

    /// Writes the `state_dict` as safetensors, atomically; `torch.nn.LSTM.load_state_dict(
    /// safetensors.torch.load_file(path))` reads it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save(&self, path: &Path) -> Result<()> {
        super::write_tensors(path, &self.state_dict()?)
    }
}
