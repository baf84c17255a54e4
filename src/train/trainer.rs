//! The training loop: tasks, steps without host round trips, metrics every N steps, and
//! checkpoints that resume to exactly the run that never stopped.

use super::model::{InputKind, Inputs, OutputKind, SequenceModel, Targets};
use super::optim::{Optimizer, OptimizerConfig};
use super::tasks::{adding_batch, step_rng, CharCorpus};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::io::{
    read_tensors_with_metadata, write_tensors_with_metadata, HostTensor, Metadata, TensorMap,
};
use crate::model::{Cell, LstmConfig};
use std::path::Path;
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
    /// LSTM or vanilla RNN.
    pub cell: Cell,
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
    pub fn metrics(&mut self) -> Result<Metrics> {
        let n = self.pending;
        if n == 0 {
            return Err(Error::Invalid("no step since the last metrics".into()));
        }
        let v = Tensor::view(&self.gpu, self.metrics.clone(), 0, &[n * METRIC_FIELDS]).to_vec()?;
        self.pending = 0;
        let rows = v.chunks_exact(METRIC_FIELDS);
        let mean = |f: fn(&[f32]) -> f32| rows.clone().map(f).sum::<f32>() / n as f32;
        Ok(Metrics {
            steps: n,
            loss: mean(|r| r[0]),
            grad_norm: mean(|r| r[1]),
            clip_rate: mean(|r| if r[2] < 1.0 { 1.0 } else { 0.0 }),
            last_loss: v[(n - 1) * METRIC_FIELDS],
        })
    }

    /// Writes a checkpoint atomically: the weights with their PyTorch names (`weight_ih_l0`, …,
    /// `head.weight`, `head.bias`), the optimizer state (`optimizer.exp_avg`, …), and in the
    /// metadata the step, the configuration and the vocabulary.
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let mut tensors: TensorMap = self.model.lstm().state_dict()?;
        for (name, values) in self.optimizer.state()? {
            tensors.insert(
                format!("optimizer.{name}"),
                HostTensor::f32(&[values.len()], values),
            );
        }
        let c = &self.config;
        let mut meta = Metadata::new();
        let mut put = |k: &str, v: String| meta.insert(k.to_string(), v);
        put("format", "wgpu-lstm checkpoint 1".into());
        put("step", self.step.to_string());
        put("cell", format!("{:?}", c.cell));
        put("hidden_size", c.hidden_size.to_string());
        put("num_layers", c.num_layers.to_string());
        put("batch", c.batch.to_string());
        put("seq_len", c.seq_len.to_string());
        put("optimizer", format!("{:?}", c.optimizer));
        put("clip", c.clip.map_or("none".into(), |v| v.to_string()));
        put("skip_nonfinite", c.skip_nonfinite.to_string());
        put("seed", c.seed.to_string());
        match &self.task {
            Task::Chars(corpus) => {
                put("task", "chars".into());
                put("vocab", corpus.vocab.iter().collect());
                put("text_fingerprint", fingerprint(&corpus.tokens).to_string());
            }
            Task::Adding => {
                put("task", "adding".into());
            }
        }
        write_tensors_with_metadata(path, &tensors, meta)
    }

    /// Continues a run from a checkpoint. `config` and `task` must be the run's own (the CLI
    /// rebuilds them from the checkpoint's metadata with [`Checkpoint`]); the weights, the
    /// optimizer state and the step come from the file.
    pub fn resume(gpu: &Gpu, checkpoint: &Checkpoint, metrics_every: usize) -> Result<Trainer> {
        let mut t = Trainer::new(
            gpu,
            checkpoint.config.clone(),
            checkpoint.task.clone(),
            metrics_every,
        )?;
        let arena = t.model.lstm().params();
        for v in arena.views() {
            let tensor = checkpoint
                .tensors
                .get(&v.name)
                .ok_or_else(|| Error::Invalid(format!("checkpoint lacks `{}`", v.name)))?;
            arena.set(&v.name, tensor.as_f32(&v.name)?)?;
        }
        let mut state = Vec::new();
        for (name, tensor) in &checkpoint.tensors {
            if let Some(short) = name.strip_prefix("optimizer.") {
                state.push((short.to_string(), tensor.as_f32(name)?.to_vec()));
            }
        }
        t.optimizer.load_state(&state, checkpoint.step)?;
        t.step = checkpoint.step;
        Ok(t)
    }
}

/// A checkpoint read back: tensors, step, and the run's configuration and task.
pub struct Checkpoint {
    /// Weights and optimizer state.
    pub tensors: TensorMap,
    /// Steps taken.
    pub step: u64,
    /// The run's configuration.
    pub config: TrainConfig,
    /// The task (for characters: the vocabulary; the text is given again with `text`).
    pub task: Task,
}

impl Checkpoint {
    /// Reads a checkpoint. Resuming a character run needs its text (the built-in one or the same
    /// `--text`; a different text is an error); sampling needs only the vocabulary (`text` None).
    pub fn read(path: &Path, text: Option<&str>) -> Result<Checkpoint> {
        let (tensors, meta) = read_tensors_with_metadata(path)?;
        Checkpoint::from_parts(tensors, &meta, text, &path.display().to_string())
    }

    /// A checkpoint from a file's tensors and metadata (`source` names it in errors).
    pub fn from_parts(
        tensors: TensorMap,
        meta: &Metadata,
        text: Option<&str>,
        source: &str,
    ) -> Result<Checkpoint> {
        let bad =
            |what: &str| Error::Invalid(format!("{}: not a wgpu-lstm checkpoint ({what})", source));
        let get = |k: &str| meta.get(k).ok_or_else(|| bad(&format!("no `{k}`")));
        let num = |k: &str| get(k)?.parse::<u64>().map_err(|_| bad(k));
        if get("format")? != "wgpu-lstm checkpoint 1" {
            return Err(bad("unknown format"));
        }
        let optimizer = parse_optimizer(get("optimizer")?).ok_or_else(|| bad("optimizer"))?;
        let clip = match get("clip")?.as_str() {
            "none" => None,
            v => Some(v.parse::<f32>().map_err(|_| bad("clip"))?),
        };
        let cell = match get("cell")?.as_str() {
            "Lstm" => Cell::Lstm,
            "Rnn" => Cell::Rnn,
            _ => return Err(bad("cell")),
        };
        let config = TrainConfig {
            cell,
            hidden_size: num("hidden_size")? as usize,
            num_layers: num("num_layers")? as usize,
            batch: num("batch")? as usize,
            seq_len: num("seq_len")? as usize,
            optimizer,
            clip,
            skip_nonfinite: get("skip_nonfinite")? == "true",
            seed: num("seed")?,
        };
        let task = match get("task")?.as_str() {
            "adding" => Task::Adding,
            "chars" => {
                let vocab: Vec<char> = get("vocab")?.chars().collect();
                let Some(text) = text else {
                    return Ok(Checkpoint {
                        tensors,
                        step: num("step")?,
                        config,
                        task: Task::Chars(CharCorpus {
                            vocab,
                            tokens: vec![],
                        }),
                    });
                };
                let corpus = CharCorpus::with_vocab(text, vocab)?;
                if fingerprint(&corpus.tokens).to_string() != *get("text_fingerprint")? {
                    return Err(Error::Invalid(format!(
                        "{}: this checkpoint was trained on another text; give the same --text",
                        source
                    )));
                }
                Task::Chars(corpus)
            }
            _ => return Err(bad("task")),
        };
        Ok(Checkpoint {
            tensors,
            step: num("step")?,
            config,
            task,
        })
    }

    /// The vocabulary of a character checkpoint.
    pub fn vocab(&self) -> Option<&[char]> {
        match &self.task {
            Task::Chars(c) => Some(&c.vocab),
            Task::Adding => None,
        }
    }
}

/// FNV-1a over the token ids: identifies the training text without storing it.
fn fingerprint(tokens: &[u32]) -> u64 {
    tokens.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &t| {
        (h ^ t as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Parses the `Debug` form of an [`OptimizerConfig`] written by `save_checkpoint`.
fn parse_optimizer(s: &str) -> Option<OptimizerConfig> {
    let field = |name: &str| -> Option<&str> {
        let start = s.find(&format!("{name}: "))? + name.len() + 2;
        let rest = &s[start..];
        let end = if rest.starts_with('(') {
            rest.find(')')? + 1
        } else {
            rest.find([',', ' ', '}']).unwrap_or(rest.len())
        };
        Some(&rest[..end])
    };
    let f = |name: &str| field(name)?.parse::<f32>().ok();
    let betas = || {
        let b = field("betas")?.trim_matches(|c| c == '(' || c == ')');
        let (a, c) = b.split_once(", ")?;
        Some((a.parse().ok()?, c.parse().ok()?))
    };
    if s.starts_with("Sgd") {
        Some(OptimizerConfig::Sgd {
            lr: f("lr")?,
            momentum: f("momentum")?,
            dampening: f("dampening")?,
            weight_decay: f("weight_decay")?,
            nesterov: field("nesterov")? == "true",
        })
    } else if s.starts_with("AdamW") {
        Some(OptimizerConfig::AdamW {
            lr: f("lr")?,
            betas: betas()?,
            eps: f("eps")?,
            weight_decay: f("weight_decay")?,
        })
    } else if s.starts_with("Adam") {
        Some(OptimizerConfig::Adam {
            lr: f("lr")?,
            betas: betas()?,
            eps: f("eps")?,
            weight_decay: f("weight_decay")?,
        })
    } else {
        None
    }
}
