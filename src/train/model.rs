//! An LSTM with an input encoding and a linear output layer, trained end to end on the GPU.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::kernels::column_sum;
use crate::kernels::gemm::{self, Gemm, Operand};
use crate::kernels::loss::{self, LossBuffers, LossKind};
use crate::model::{ForwardCache, ForwardOptions, Lstm, LstmConfig, OutputGrads};
use std::sync::Arc;

/// What the model reads at each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// Token ids in `0..vocab`, fed as one-hot vectors (the input GEMM is the embedding lookup).
    Tokens {
        /// Number of classes.
        vocab: usize,
    },
    /// Real feature vectors of this size.
    Features {
        /// Features per step.
        size: usize,
    },
}

/// What the model predicts and how it is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// A class at every step: softmax cross-entropy, mean over non-ignored steps.
    Classes {
        /// Number of classes.
        vocab: usize,
    },
    /// One number per sequence from its last step: mean squared error.
    Regression,
}

/// One batch, time-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    /// `[T·B]` token ids.
    Tokens(Vec<u32>),
    /// `[T·B·F]` features.
    Features(Vec<f32>),
}

/// The targets of one batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// `[T·B]` class ids; [`IGNORE`] for padding.
    Classes(Vec<u32>),
    /// `[B]` values.
    Values(Vec<f32>),
}

/// A target class that does not count (padding).
pub const IGNORE: u32 = u32::MAX;

/// Name of the output layer's weight `[outputs, D·H]` in the parameter arena.
pub const HEAD_WEIGHT: &str = "head.weight";
/// Name of the output layer's bias `[outputs]`.
pub const HEAD_BIAS: &str = "head.bias";

/// An LSTM plus a linear head (`head.weight`, `head.bias`, in the LSTM's arena).
pub struct SequenceModel {
    lstm: Lstm,
    input: InputKind,
    output: OutputKind,
}

/// A finished training forward/backward: the loss stays on the GPU.
pub struct StepLoss {
    /// `[1]`: the mean loss.
    pub loss: Tensor,
}

impl SequenceModel {
    /// A model whose LSTM has `config` (its `input_size` must match `input`).
    pub fn new(
        gpu: &Gpu,
        config: LstmConfig,
        input: InputKind,
        output: OutputKind,
    ) -> Result<SequenceModel> {
        let in_size = match input {
            InputKind::Tokens { vocab } => vocab,
            InputKind::Features { size } => size,
        };
        if config.batch_first {
            return Err(Error::Invalid(
                "SequenceModel builds time-major batches: use batch_first = false".into(),
            ));
        }
        if in_size != config.input_size {
            return Err(Error::Invalid(format!(
                "the LSTM's input_size {} does not match the input encoding's {in_size}",
                config.input_size
            )));
        }
        let outputs = match output {
            OutputKind::Classes { vocab } => vocab,
            OutputKind::Regression => 1,
        };
        let width = config.directions() * config.output_size();
        let head = [
            (HEAD_WEIGHT.to_string(), vec![outputs, width]),
            (HEAD_BIAS.to_string(), vec![outputs]),
        ];
        let lstm = Lstm::with_extra_params(gpu, config, &head)?;
        Ok(SequenceModel {
            lstm,
            input,
            output,
        })
    }

    /// The LSTM (its arena holds the head too).
    pub fn lstm(&self) -> &Lstm {
        &self.lstm
    }

    /// The input encoding.
    pub fn input_kind(&self) -> InputKind {
        self.input
    }

    /// The output kind.
    pub fn output_kind(&self) -> OutputKind {
        self.output
    }

    fn outputs(&self) -> usize {
        match self.output {
            OutputKind::Classes { vocab } => vocab,
            OutputKind::Regression => 1,
        }
    }

    /// Uploads and encodes inputs `[T, B]` as the LSTM's input tensor `[T, B, I]`.
    pub fn encode_inputs(&self, inputs: &Inputs, steps: usize, batch: usize) -> Result<Tensor> {
        let gpu = self.lstm.gpu();
        let rows = steps * batch;
        match (inputs, self.input) {
            (Inputs::Tokens(tokens), InputKind::Tokens { vocab }) => {
                check_len("tokens", tokens.len(), rows)?;
                gpu.record("one-hot", |encoder| {
                    let ids = gpu.scratch_init("token ids", tokens)?;
                    // Every element is written (a scratch buffer: see `Gpu::scratch`).
                    let x = gpu.scratch("one-hot input", rows * vocab)?;
                    let mut pass = gpu.compute_pass(encoder, "input encoding");
                    loss::encode_one_hot(gpu, &mut pass, &ids, rows, vocab, &x)?;
                    Ok(Tensor::view(gpu, x, 0, &[steps, batch, vocab]))
                })
            }
            (Inputs::Features(values), InputKind::Features { size }) => {
                check_len("features", values.len(), rows * size)?;
                let x = gpu.scratch_init("features", values)?;
                Ok(Tensor::view(gpu, x, 0, &[steps, batch, size]))
            }
            _ => Err(Error::Invalid(
                "the inputs do not match the model's input kind".into(),
            )),
        }
    }

    /// Forward, loss and backward for one batch: parameter gradients land in the arena
    /// (overwritten), the mean loss stays on the GPU. Several submits, no host wait.
    pub fn forward_backward(
        &self,
        inputs: &Inputs,
        targets: &Targets,
        steps: usize,
        batch: usize,
    ) -> Result<StepLoss> {
        let x = self.encode_inputs(inputs, steps, batch)?;
        let out = self.lstm.run(
            &x,
            &ForwardOptions {
                train: true,
                ..Default::default()
            },
        )?;
        let cache: &ForwardCache = out
            .cache
            .as_ref()
            .ok_or_else(|| Error::Invalid("no cache".into()))?;
        let (loss, dy) = self.head_loss(&out.y, targets, steps, batch)?;
        self.lstm.backward(cache, &OutputGrads::dy(&dy), false)?;
        Ok(StepLoss { loss })
    }

    /// The head and the loss on the LSTM's outputs `y [T, B, D·H]`: writes the head's gradients
    /// to the arena and returns the mean loss and `dL/dy`. One submit.
    fn head_loss(
        &self,
        y: &Tensor,
        targets: &Targets,
        steps: usize,
        batch: usize,
    ) -> Result<(Tensor, Tensor)> {
        let gpu = self.lstm.gpu();
        let arena = self.lstm.params();
        let width = self.lstm.config().directions() * self.lstm.config().output_size();
        let outputs = self.outputs();
        let (w, b) = (
            arena.view(HEAD_WEIGHT)?.offset,
            arena.view(HEAD_BIAS)?.offset,
        );
        // Rows the head reads: every step, or the last step of each sequence.
        let (rows, first_row, kind, target_bits, scale) = match (targets, self.output) {
            (Targets::Classes(t), OutputKind::Classes { .. }) => {
                check_len("targets", t.len(), steps * batch)?;
                let counted = t.iter().filter(|&&v| v != IGNORE).count().max(1);
                if let Some(bad) = t.iter().find(|&&v| v != IGNORE && v as usize >= outputs) {
                    return Err(Error::Invalid(format!(
                        "target class {bad} is outside 0..{outputs}"
                    )));
                }
                (
                    steps * batch,
                    0,
                    LossKind::CrossEntropy,
                    t.clone(),
                    1.0 / counted as f32,
                )
            }
            (Targets::Values(v), OutputKind::Regression) => {
                check_len("targets", v.len(), batch)?;
                let bits = v.iter().map(|x| x.to_bits()).collect();
                (
                    batch,
                    (steps - 1) * batch,
                    LossKind::SquaredError,
                    bits,
                    1.0 / batch as f32,
                )
            }
            _ => {
                return Err(Error::Invalid(
                    "the targets do not match the model's output kind".into(),
                ))
            }
        };
        gpu.record("head and loss", |encoder| {
            // Scratch buffers (see `Gpu::scratch`): the kernels below write every element,
            // except the rows of dy before the first scored step, which are cleared.
            let logits = gpu.scratch("logits", rows * outputs)?;
            let dlogits = gpu.scratch("logit gradients", rows * outputs)?;
            let row_losses = gpu.scratch("row losses", rows)?;
            let loss = gpu.scratch("loss", 1)?;
            let dy = gpu.scratch("dy", steps * batch * width)?;
            if first_row > 0 {
                encoder.clear_buffer(&dy, 0, Some((first_row * width * 4) as u64));
            }
            let targets = gpu.scratch_init("targets", &target_bits)?;
            let params = arena.params_buffer();
            let grads = arena.grads_buffer();
            let mut pass = gpu.compute_pass(encoder, "head and loss");
            let y_rows = Operand::new(y.buffer(), y.offset() + first_row * width, width);
            // logits = y · Wᵀ + b
            gemm::encode(gpu, &mut pass, &self.logits(y_rows, rows, &logits)?)?;
            loss::encode(
                gpu,
                &mut pass,
                kind,
                (rows, outputs),
                scale,
                &LossBuffers {
                    input: &logits,
                    targets: &targets,
                    grad: &dlogits,
                    rows: &row_losses,
                    out: &loss,
                },
            )?;
            let dl = Operand::new(&dlogits, 0, outputs);
            // dW = dlogitsᵀ · y, db = Σ_rows dlogits, dy = dlogits · W
            let d_weight = Gemm::new((outputs, width, rows), dl.t(), y_rows, (grads, w));
            gemm::encode(gpu, &mut pass, &d_weight)?;
            let d_bias = (rows, outputs);
            column_sum::encode(gpu, &mut pass, (&dlogits, 0), d_bias, grads, (b, b), false)?;
            let weight = Operand::new(params, w, width);
            let d_y = Gemm::new((rows, width, outputs), dl, weight, (&dy, first_row * width));
            gemm::encode(gpu, &mut pass, &d_y)?;
            let y_shape = [steps, batch, width];
            Ok((
                Tensor::view(gpu, loss, 0, &[1]),
                Tensor::view(gpu, dy, 0, &y_shape),
            ))
        })
    }

    /// Head outputs (logits, or the regression value) for the LSTM outputs `y` at every row:
    /// `[rows, outputs]`.
    pub fn head(&self, y: &Tensor) -> Result<Tensor> {
        let gpu = self.lstm.gpu();
        let width = self.width();
        let rows = y.len() / width;
        gpu.record("head", |encoder| {
            let logits = Arc::new(gpu.storage_buffer("logits", rows * self.outputs())?);
            let mut pass = gpu.compute_pass(encoder, "head");
            let y_rows = Operand::new(y.buffer(), y.offset(), width);
            gemm::encode(gpu, &mut pass, &self.logits(y_rows, rows, &logits)?)?;
            Ok(Tensor::view(gpu, logits, 0, &[rows, self.outputs()]))
        })
    }

    /// D·R: the features of the LSTM's output the head reads.
    fn width(&self) -> usize {
        self.lstm.config().directions() * self.lstm.config().output_size()
    }

    /// `logits = y · Wᵀ + b` for `rows` rows of `y`, into `logits`.
    fn logits<'a>(
        &'a self,
        y: Operand<'a>,
        rows: usize,
        logits: &'a wgpu::Buffer,
    ) -> Result<Gemm<'a>> {
        let arena = self.lstm.params();
        let (w, b) = (
            arena.view(HEAD_WEIGHT)?.offset,
            arena.view(HEAD_BIAS)?.offset,
        );
        let params = arena.params_buffer();
        let weight = Operand::new(params, w, self.width()).t();
        Ok(
            Gemm::new((rows, self.outputs(), self.width()), y, weight, (logits, 0))
                .bias(params, b, None),
        )
    }
}

impl SequenceModel {
    /// Generates `length` tokens after `prompt` (at least one token) from a character model:
    /// the prompt runs as one sequence, then one step per token, the LSTM state staying on the
    /// GPU; each step reads back only the logits to sample from (softmax at `temperature`;
    /// 0 takes the most likely token).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn generate(
        &self,
        prompt: &[u32],
        length: usize,
        temperature: f32,
        rng: &mut impl rand::Rng,
    ) -> Result<Vec<u32>> {
        crate::gpu::block(self.generate_async(prompt, length, temperature, rng))
    }

    /// [`SequenceModel::generate`] as a future (for the web).
    pub async fn generate_async(
        &self,
        prompt: &[u32],
        length: usize,
        temperature: f32,
        rng: &mut impl rand::Rng,
    ) -> Result<Vec<u32>> {
        if prompt.is_empty() {
            return Err(Error::Invalid("the prompt needs at least one token".into()));
        }
        if !(temperature.is_finite() && temperature >= 0.0) {
            return Err(Error::Invalid(format!(
                "temperature must be ≥ 0, got {temperature}"
            )));
        }
        let mut out = Vec::new();
        let mut state: Option<(Tensor, Tensor)> = None;
        let mut feed = prompt.to_vec();
        for _ in 0..length {
            let x = self.encode_inputs(&Inputs::Tokens(feed.clone()), feed.len(), 1)?;
            let run = self.lstm.forward(
                &x,
                state.as_ref().map(|s| &s.0),
                state.as_ref().map(|s| &s.1),
            )?;
            let width = run.y.shape()[2];
            let last = Tensor::view(
                self.lstm.gpu(),
                run.y.buffer().clone(),
                run.y.offset() + (feed.len() - 1) * width,
                &[1, 1, width],
            );
            let logits = self.head(&last)?.to_vec_async().await?;
            if let Some(bad) = logits.iter().find(|v| !v.is_finite()) {
                return Err(Error::NonFinite(format!(
                    "the model's logits hold {bad}: its weights are broken"
                )));
            }
            let next = sample(&logits, temperature, rng);
            out.push(next);
            feed = vec![next];
            state = Some((run.h_n, run.c_n));
        }
        Ok(out)
    }
}

/// Draws a class from `logits` at `temperature` (0: argmax).
fn sample(logits: &[f32], temperature: f32, rng: &mut impl rand::Rng) -> u32 {
    let best = logits
        .iter()
        .enumerate()
        .fold(0, |b, (i, &v)| if v > logits[b] { i } else { b });
    if temperature == 0.0 {
        return best as u32;
    }
    let weights: Vec<f64> = logits
        .iter()
        .map(|&v| (((v - logits[best]) / temperature) as f64).exp())
        .collect();
    let mut u = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (i, w) in weights.iter().enumerate() {
        u -= w;
        if u <= 0.0 {
            return i as u32;
        }
    }
    best as u32
}

fn check_len(what: &str, given: usize, expected: usize) -> Result<()> {
    if given != expected {
        return Err(Error::Shape {
            tensor: what.into(),
            expected: format!("{expected} values"),
            given: format!("{given} values"),
        });
    }
    Ok(())
}
