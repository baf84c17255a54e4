//! Checkpoints: the weights under PyTorch's names (`weight_ih_l0`, …, `head.weight`,
//! `head.bias`), the optimizer state (`optimizer.exp_avg`, …), and the run in metadata under
//! explicit keys with a format version. Every tensor carries a CRC-32 (see [`crate::io`]), so
//! a corrupted file is an error, not a run trained on garbage.
//!
//! Format 2 (written since the cell-template work) stores each setting under its own key;
//! format 1 stored the optimizer as its `Debug` text, which is still read.

use super::optim::{Hyper, OptimizerConfig};
use super::tasks::CharCorpus;
use super::trainer::{Task, TrainConfig, Trainer};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io::{Metadata, TensorMap};
use crate::model::{Cell, Nonlinearity};
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

const FORMAT_V1: &str = "wgpu-lstm checkpoint 1";
const FORMAT_V2: &str = "wgpu-lstm checkpoint 2";

impl Trainer {
    /// Writes a checkpoint atomically. A model whose weights or optimizer state hold NaN or
    /// infinity is refused ([`Error::NonFinite`]): whatever `path` held stays as it was.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let mut tensors: TensorMap = self.model().lstm().state_dict()?;
        for (name, values) in self.optimizer().state()? {
            tensors.insert(
                format!("optimizer.{name}"),
                crate::io::HostTensor::f32(&[values.len()], values),
            );
        }
        if let Some(bad) = first_nonfinite(&tensors) {
            return Err(Error::NonFinite(format!(
                "{} was not overwritten: {bad}, the run has diverged",
                path.display()
            )));
        }
        let meta = run_metadata(self.config(), self.task(), self.step_count());
        crate::io::write_tensors_with_metadata(path, &tensors, meta)
    }

    /// Continues a run from a checkpoint. `config` and `task` must be the run's own (the CLI
    /// rebuilds them from the checkpoint's metadata with [`Checkpoint`]); the weights, the
    /// optimizer state and the step come from the file, which must hold every one of them.
    pub fn resume(gpu: &Gpu, checkpoint: &Checkpoint, metrics_every: usize) -> Result<Trainer> {
        let mut t = Trainer::new(
            gpu,
            checkpoint.config.clone(),
            checkpoint.task.clone(),
            metrics_every,
        )?;
        if let Some(bad) = first_nonfinite(&checkpoint.tensors) {
            return Err(Error::NonFinite(format!(
                "the checkpoint cannot be resumed: {bad}"
            )));
        }
        let arena = t.model().lstm().params();
        for v in arena.views() {
            let tensor = checkpoint
                .tensors
                .get(&v.name)
                .ok_or_else(|| Error::Invalid(format!("the checkpoint lacks `{}`", v.name)))?;
            arena.set(&v.name, tensor.as_f32(&v.name)?)?;
        }
        let mut state = Vec::new();
        for short in t.optimizer().state_names() {
            let name = format!("optimizer.{short}");
            let tensor = checkpoint.tensors.get(&name).ok_or_else(|| {
                Error::Invalid(format!(
                    "the checkpoint lacks `{name}`, the {} state it needs to resume",
                    t.config().optimizer.name()
                ))
            })?;
            state.push((short.to_string(), tensor.as_f32(&name)?.to_vec()));
        }
        if let Some(extra) = checkpoint.tensors.keys().find(|name| {
            name.strip_prefix("optimizer.")
                .is_some_and(|short| !t.optimizer().state_names().contains(&short))
        }) {
            return Err(Error::Invalid(format!(
                "the checkpoint has `{extra}`, which a {} optimizer does not use",
                t.config().optimizer.name()
            )));
        }
        t.restore(&state, checkpoint.step)?;
        Ok(t)
    }
}

/// "`name` holds NaN (element i)" for the first tensor of `tensors` with NaN or ±∞.
fn first_nonfinite(tensors: &TensorMap) -> Option<String> {
    tensors.iter().find_map(|(name, t)| match &t.data {
        crate::io::HostData::F32(v) => v
            .iter()
            .enumerate()
            .find(|(_, x)| !x.is_finite())
            .map(|(i, x)| format!("`{name}` holds {x} (element {i})")),
        _ => None,
    })
}

/// The run under explicit keys (format 2).
#[cfg(not(target_arch = "wasm32"))]
fn run_metadata(c: &TrainConfig, task: &Task, step: u64) -> Metadata {
    let mut meta = Metadata::new();
    let mut put = |k: &str, v: String| meta.insert(k.to_string(), v);
    put("format", FORMAT_V2.into());
    put("step", step.to_string());
    put("cell", cell_name(c.cell).into());
    put(
        "nonlinearity",
        match c.nonlinearity {
            Nonlinearity::Tanh => "tanh",
            Nonlinearity::Relu => "relu",
        }
        .into(),
    );
    put("proj_size", c.proj_size.to_string());
    put("hidden_size", c.hidden_size.to_string());
    put("num_layers", c.num_layers.to_string());
    put("batch", c.batch.to_string());
    put("seq_len", c.seq_len.to_string());
    put("optimizer", c.optimizer.name().into());
    let hyper = c.optimizer.hyper();
    for name in c.optimizer.hyper_names() {
        let value = match *name {
            "nesterov" => hyper.nesterov.to_string(),
            _ => hyper.get(name).unwrap_or_default().to_string(),
        };
        put(&format!("optimizer.{name}"), value);
    }
    put("clip", c.clip.map_or("none".into(), |v| v.to_string()));
    put("skip_nonfinite", c.skip_nonfinite.to_string());
    put("seed", c.seed.to_string());
    match task {
        Task::Chars(corpus) => {
            put("task", "chars".into());
            put("vocab", corpus.vocab.iter().collect());
            put("text_fingerprint", fingerprint(&corpus.tokens).to_string());
        }
        Task::Adding => {
            put("task", "adding".into());
        }
    }
    meta
}

fn cell_name(cell: Cell) -> &'static str {
    match cell {
        Cell::Lstm => "lstm",
        Cell::Gru => "gru",
        Cell::Rnn => "rnn",
    }
}

fn cell_of(name: &str) -> Option<Cell> {
    [Cell::Lstm, Cell::Gru, Cell::Rnn]
        .into_iter()
        .find(|&c| cell_name(c) == name)
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

/// The metadata of one file, with errors that name it.
struct Keys<'a> {
    meta: &'a Metadata,
    source: &'a str,
}

impl Keys<'_> {
    fn bad(&self, what: &str) -> Error {
        Error::Invalid(format!(
            "{}: not a wgpu-lstm checkpoint ({what})",
            self.source
        ))
    }

    fn get(&self, key: &str) -> Result<&str> {
        self.meta
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| self.bad(&format!("no `{key}`")))
    }

    fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        self.get(key)?
            .parse()
            .map_err(|_| self.bad(&format!("`{key}` = {:?}", self.get(key).unwrap_or(""))))
    }
}

impl Checkpoint {
    /// Reads a checkpoint (format 2, or format 1 of earlier versions). Resuming a character
    /// run needs its text (the built-in one or the same `--text`; a different text is an
    /// error); sampling needs only the vocabulary (`text` None).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(path: &Path, text: Option<&str>) -> Result<Checkpoint> {
        let (tensors, meta) = crate::io::read_tensors_with_metadata(path)?;
        Checkpoint::from_parts(tensors, &meta, text, &path.display().to_string())
    }

    /// A checkpoint from a file's tensors and metadata (`source` names it in errors).
    pub fn from_parts(
        tensors: TensorMap,
        meta: &Metadata,
        text: Option<&str>,
        source: &str,
    ) -> Result<Checkpoint> {
        let keys = Keys { meta, source };
        let format = keys.get("format")?;
        let (cell, optimizer) = match format {
            FORMAT_V2 => (
                cell_of(keys.get("cell")?).ok_or_else(|| keys.bad("cell"))?,
                optimizer_v2(&keys)?,
            ),
            FORMAT_V1 => (
                match keys.get("cell")? {
                    "Lstm" => Cell::Lstm,
                    "Rnn" => Cell::Rnn,
                    _ => return Err(keys.bad("cell")),
                },
                optimizer_v1(keys.get("optimizer")?).ok_or_else(|| keys.bad("optimizer"))?,
            ),
            other => {
                return Err(Error::Invalid(format!(
                    "{source}: checkpoint format {other:?} is not one this version reads \
                     ({FORMAT_V1:?} or {FORMAT_V2:?}); a newer wgpu-lstm wrote it"
                )))
            }
        };
        let clip = match keys.get("clip")? {
            "none" => None,
            _ => Some(keys.parse::<f32>("clip")?),
        };
        // Format 1 knew only tanh and no projections.
        let nonlinearity = match meta.get("nonlinearity").map(String::as_str) {
            None | Some("tanh") => Nonlinearity::Tanh,
            Some("relu") => Nonlinearity::Relu,
            Some(_) => return Err(keys.bad("nonlinearity")),
        };
        let proj_size = match meta.get("proj_size") {
            None => 0,
            Some(_) => keys.parse("proj_size")?,
        };
        let config = TrainConfig {
            cell,
            nonlinearity,
            proj_size,
            hidden_size: keys.parse("hidden_size")?,
            num_layers: keys.parse("num_layers")?,
            batch: keys.parse("batch")?,
            seq_len: keys.parse("seq_len")?,
            optimizer,
            clip,
            skip_nonfinite: keys.parse("skip_nonfinite")?,
            seed: keys.parse("seed")?,
        };
        let task = match keys.get("task")? {
            "adding" => Task::Adding,
            "chars" => {
                let vocab: Vec<char> = keys.get("vocab")?.chars().collect();
                match text {
                    None => Task::Chars(CharCorpus {
                        vocab,
                        tokens: vec![],
                    }),
                    Some(text) => {
                        let corpus = CharCorpus::with_vocab(text, vocab)?;
                        if fingerprint(&corpus.tokens).to_string()
                            != keys.get("text_fingerprint")?
                        {
                            return Err(Error::Invalid(format!(
                                "{source}: this checkpoint was trained on another text; give the same --text"
                            )));
                        }
                        Task::Chars(corpus)
                    }
                }
            }
            _ => return Err(keys.bad("task")),
        };
        Ok(Checkpoint {
            tensors,
            step: keys.parse("step")?,
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

/// The optimizer of a format-2 checkpoint.
fn optimizer_v2(keys: &Keys<'_>) -> Result<OptimizerConfig> {
    let name = keys.get("optimizer")?;
    let kind =
        OptimizerConfig::from_hyper(name, Hyper::default()).ok_or_else(|| keys.bad("optimizer"))?;
    let mut hyper = Hyper::default();
    for field in kind.hyper_names() {
        let key = format!("optimizer.{field}");
        let value = match *field {
            "nesterov" => f32::from(u8::from(keys.parse::<bool>(&key)?)),
            _ => keys.parse::<f32>(&key)?,
        };
        hyper.set(field, value);
    }
    OptimizerConfig::from_hyper(name, hyper).ok_or_else(|| keys.bad("optimizer"))
}

/// Parses the `Debug` form of an [`OptimizerConfig`] that format-1 checkpoints stored.
fn optimizer_v1(s: &str) -> Option<OptimizerConfig> {
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

/// FNV-1a over the token ids: identifies the training text without storing it.
fn fingerprint(tokens: &[u32]) -> u64 {
    tokens.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &t| {
        (h ^ t as u64).wrapping_mul(0x100_0000_01b3)
    })
}
