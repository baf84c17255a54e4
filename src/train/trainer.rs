//! The training loop: tasks, steps without host round trips, metrics every N steps, and
//! checkpoints that resume to exactly the run that never stopped.

use super::model::{InputKind, Inputs, OutputKind, SequenceModel, Targets};
use super::optim::{Optimizer, OptimizerConfig};
use super::tasks::{adding_batch, step_rng, CharCorpus};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::model::{Cell, LstmConfig, Nonlinearity};
use std::sync::Arc;

/// Which task to train on.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// Next-character prediction on a text.
    Chars(CharCorpus),
    /// The adding problem.
    Adding,
}

/// Everything that defines a training run (and is stored in its checkpoints).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// LSTM, GRU or vanilla RNN.
    pub cell: Cell,
    /// The RNN's nonlinearity.
    pub nonlinearity: Nonlinearity,
    /// The LSTM's projection size P (0: none).
    pub proj_size: usize,
    /// Hidden units per layer.
    pub hidden_size: usize,
    /// Stacked layers.
    pub num_layers: usize,
    /// Sequences per batch.
    pub batch: usize,
    /// Timesteps per sequence.
    pub seq_len: usize,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// Global gradient-norm clipping threshold.
    pub clip: Option<f32>,
    /// Skip a step whose gradient norm is NaN or infinite (weights and optimizer state unchanged).
    pub skip_nonfinite: bool,
    /// Seed of the weights and of every batch.
    pub seed: u64,
}

impl Default for TrainConfig {
    /// The command line's defaults: a 64-unit LSTM, batch 32 × 64 steps, Adam at 0.01, clip 1.
    fn default() -> Self {
        TrainConfig {
            cell: Cell::Lstm,
            nonlinearity: Nonlinearity::Tanh,
            proj_size: 0,
            hidden_size: 64,
            num_layers: 1,
            batch: 32,
            seq_len: 64,
            optimizer: OptimizerConfig::adam(0.01),
            clip: Some(1.0),
            skip_nonfinite: false,
            seed: 0,
        }
    }
}

/// Averages over the steps since the last [`Trainer::metrics`] call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    /// Steps averaged.
    pub steps: usize,
    /// Mean loss.
    pub loss: f32,
    /// Mean gradient norm (before clipping).
    pub grad_norm: f32,
    /// Fraction of steps whose gradients were clipped.
    pub clip_rate: f32,
    /// Loss of the last step.
    pub last_loss: f32,
    /// Steps skipped because their gradient norm was NaN or infinite (with
    /// `skip_nonfinite`; the means are over the other steps).
    pub skipped: usize,
}

/// Metrics slots kept on the GPU between readbacks: loss, norm, coefficient, non-finite flag.
const METRIC_FIELDS: usize = 4;

/// A model, its optimizer, its task, and the step count.
pub struct Trainer {
    gpu: Gpu,
    config: TrainConfig,
    task: Task,
    model: SequenceModel,
    optimizer: Optimizer,
    step: u64,
    /// `[capacity, 4]` per-step metrics written by the GPU, read back by `metrics`.
    metrics: Arc<wgpu::Buffer>,
    capacity: usize,
    pending: usize,
}

impl Trainer {
    /// A fresh run: weights from the seed, step 0. `metrics_every` bounds how many steps may
    /// pass between two [`Trainer::metrics`] calls.
    pub fn new(
        gpu: &Gpu,
        config: TrainConfig,
        task: Task,
        metrics_every: usize,
    ) -> Result<Trainer> {
        if config.batch == 0 || config.seq_len == 0 || metrics_every == 0 {
            return Err(Error::Invalid(
                "batch, seq-len and the metrics interval must be at least 1".into(),
            ));
        }
        // Host-side batches are built in memory: keep them (and the metrics ring) sane.
        let tokens = config.batch.checked_mul(config.seq_len);
        if tokens.is_none_or(|n| n > 1 << 26) || metrics_every > 1 << 20 {
            return Err(Error::Invalid(format!(
                "batch × seq-len = {} × {} (at most 2^26 tokens per step) or metrics interval {metrics_every} (at most 2^20) too large",
                config.batch, config.seq_len
            )));
        }
        if let Some(c) = config.clip {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::Invalid(format!(
                    "--clip must be a positive number, got {c}"
                )));
            }
        }
        let (input, output, in_size) = match &task {
            Task::Chars(c) => (
                InputKind::Tokens {
                    vocab: c.vocab.len(),
                },
                OutputKind::Classes {
                    vocab: c.vocab.len(),
                },
                c.vocab.len(),
            ),
            Task::Adding => (InputKind::Features { size: 2 }, OutputKind::Regression, 2),
        };
        let lstm = LstmConfig::new(in_size, config.hidden_size)
            .with_cell(config.cell)
            .with_nonlinearity(config.nonlinearity)
            .with_proj_size(config.proj_size)
            .with_layers(config.num_layers)
            .with_seed(config.seed);
        let model = SequenceModel::new(gpu, lstm, input, output)?;
        let optimizer = Optimizer::new(model.lstm().params(), config.optimizer)?;
        let metrics =
            Arc::new(gpu.storage_buffer("training metrics", metrics_every * METRIC_FIELDS)?);
        Ok(Trainer {
            gpu: gpu.clone(),
            config,
            task,
            model,
            optimizer,
            step: 0,
            metrics,
            capacity: metrics_every,
            pending: 0,
        })
    }

    /// The run's configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The task.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// The optimizer (its state goes into checkpoints).
    pub(super) fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    /// Sets the optimizer state and the step count of a resumed run.
    pub(super) fn restore(&mut self, state: &[(String, Vec<f32>)], step: u64) -> Result<()> {
        self.optimizer.load_state(state, step)?;
        self.step = step;
        Ok(())
    }

    /// The model.
    pub fn model(&self) -> &SequenceModel {
        &self.model
    }

    /// Steps taken.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Tokens (or sequence steps) per training step.
    pub fn tokens_per_step(&self) -> usize {
        self.config.batch * self.config.seq_len
    }

    /// One training step: forward, loss, backward, clip, optimizer, all on the GPU; the host
    /// does not wait for any of it.
    pub fn step(&mut self) -> Result<()> {
        if self.pending == self.capacity {
            return Err(Error::Invalid(format!(
                "read the metrics at least every {} steps",
                self.capacity
            )));
        }
        let mut rng = step_rng(self.config.seed, self.step);
        let (steps, batch) = (self.config.seq_len, self.config.batch);
        let (inputs, targets) = match &self.task {
            Task::Chars(c) if c.tokens.len() < 2 => {
                return Err(Error::Invalid(
                    "training needs a text of at least 2 characters".into(),
                ))
            }
            Task::Chars(c) => c.batch(&mut rng, steps, batch),
            Task::Adding => adding_batch(&mut rng, steps, batch),
        };
        self.train_on(&inputs, &targets)
    }

    /// One training step on a given batch.
    pub fn train_on(&mut self, inputs: &Inputs, targets: &Targets) -> Result<()> {
        let lstm = self.model.lstm();
        // Dropout masks (if any) follow the step count, so a resumed run redraws the same ones.
        lstm.set_training_calls(self.step);
        let loss =
            self.model
                .forward_backward(inputs, targets, self.config.seq_len, self.config.batch)?;
        let arena = lstm.params();
        // Without clipping, a clip at f32::MAX measures the norm and changes nothing.
        let clip = arena.clip_grad_norm(
            self.config.clip.unwrap_or(f32::MAX),
            self.config.skip_nonfinite,
        )?;
        self.optimizer
            .step(arena, self.config.skip_nonfinite.then_some(&clip))?;
        let slot = (self.pending * METRIC_FIELDS * 4) as u64;
        self.gpu.record("metrics", |encoder| {
            encoder.copy_buffer_to_buffer(
                loss.loss.buffer(),
                loss.loss.byte_offset(),
                &self.metrics,
                slot,
                4,
            );
            encoder.copy_buffer_to_buffer(clip.tensor().buffer(), 0, &self.metrics, slot + 4, 12);
            Ok(())
        })?;
        self.pending += 1;
        self.step += 1;
        Ok(())
    }

    /// Reads back and averages the metrics of the steps since the last call (one wait).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn metrics(&mut self) -> Result<Metrics> {
        crate::gpu::block(self.metrics_async())
    }

    /// [`Trainer::metrics`] as a future (for the web).
    pub async fn metrics_async(&mut self) -> Result<Metrics> {
        let n = self.pending;
        if n == 0 {
            return Err(Error::Invalid("no step since the last metrics".into()));
        }
        let v = Tensor::view(&self.gpu, self.metrics.clone(), 0, &[n * METRIC_FIELDS])
            .to_vec_async()
            .await?;
        self.pending = 0;
        let first_step = self.step - n as u64 + 1;
        // A diverged step stops the run, unless such steps are skipped (then they were, on the
        // GPU: weights and optimizer state untouched).
        let skipped = |r: &[f32]| r[3] != 0.0;
        for (i, r) in v.chunks_exact(METRIC_FIELDS).enumerate() {
            let step = first_step + i as u64;
            let finite = r[0].is_finite() && r[1].is_finite();
            if !finite && !self.config.skip_nonfinite {
                return Err(Error::NonFinite(format!(
                    "step {step}: the loss is {} and the gradient norm {}; the run stops here",
                    r[0], r[1]
                )));
            }
        }
        let kept: Vec<&[f32]> = v
            .chunks_exact(METRIC_FIELDS)
            .filter(|r| !skipped(r))
            .collect();
        let count = kept.len().max(1) as f32;
        let mean = |f: fn(&[f32]) -> f32| kept.iter().map(|r| f(r)).sum::<f32>() / count;
        Ok(Metrics {
            steps: n,
            loss: mean(|r| r[0]),
            grad_norm: mean(|r| r[1]),
            clip_rate: mean(|r| if r[2] < 1.0 { 1.0 } else { 0.0 }),
            last_loss: v[(n - 1) * METRIC_FIELDS],
            skipped: n - kept.len(),
        })
    }
}
