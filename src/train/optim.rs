//! Optimizers over the parameter arena: one WGSL dispatch per step, whatever the model's size.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::optim::{
    self, OptimBuffers, OptimParams, ADAM, ADAMW, FIRST_STEP, NESTEROV, SGD, SKIP_NONFINITE,
};
use crate::model::{ClipNorm, ParamArena};
use std::sync::Arc;

/// An optimizer and its hyper-parameters, with PyTorch's meaning and defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerConfig {
    /// `torch.optim.SGD(lr, momentum, dampening, weight_decay, nesterov)`.
    Sgd {
        /// Learning rate.
        lr: f32,
        /// Momentum factor (0 = plain SGD).
        momentum: f32,
        /// Dampening of the momentum.
        dampening: f32,
        /// L2 penalty added to the gradient.
        weight_decay: f32,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// `torch.optim.Adam(lr, betas, eps, weight_decay)` (L2 penalty added to the gradient).
    Adam {
        /// Learning rate.
        lr: f32,
        /// (β₁, β₂).
        betas: (f32, f32),
        /// ε.
        eps: f32,
        /// L2 penalty.
        weight_decay: f32,
    },
    /// `torch.optim.AdamW(lr, betas, eps, weight_decay)` (decoupled weight decay).
    AdamW {
        /// Learning rate.
        lr: f32,
        /// (β₁, β₂).
        betas: (f32, f32),
        /// ε.
        eps: f32,
        /// Decoupled weight decay.
        weight_decay: f32,
    },
}

impl OptimizerConfig {
    /// SGD with PyTorch's defaults (no momentum, no weight decay).
    pub fn sgd(lr: f32) -> Self {
        OptimizerConfig::Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }

    /// Adam with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn adam(lr: f32) -> Self {
        OptimizerConfig::Adam {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// AdamW with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
    pub fn adamw(lr: f32) -> Self {
        OptimizerConfig::AdamW {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> f32 {
        match *self {
            OptimizerConfig::Sgd { lr, .. }
            | OptimizerConfig::Adam { lr, .. }
            | OptimizerConfig::AdamW { lr, .. } => lr,
        }
    }

    /// A short name: `sgd`, `adam`, `adamw`.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd { .. } => "sgd",
            OptimizerConfig::Adam { .. } => "adam",
            OptimizerConfig::AdamW { .. } => "adamw",
        }
    }

    /// Every hyper-parameter, flat (0 for those the kind has not).
    pub(crate) fn hyper(&self) -> Hyper {
        match *self {
            OptimizerConfig::Sgd {
                lr,
                momentum,
                dampening,
                weight_decay,
                nesterov,
            } => Hyper {
                lr,
                momentum,
                dampening,
                weight_decay,
                nesterov,
                ..Hyper::default()
            },
            OptimizerConfig::Adam {
                lr,
                betas,
                eps,
                weight_decay,
            }
            | OptimizerConfig::AdamW {
                lr,
                betas,
                eps,
                weight_decay,
            } => Hyper {
                lr,
                beta1: betas.0,
                beta2: betas.1,
                eps,
                weight_decay,
                ..Hyper::default()
            },
        }
    }

    /// The optimizer `name` (`sgd`, `adam`, `adamw`) with the settings of `h`.
    pub(crate) fn from_hyper(name: &str, h: Hyper) -> Option<OptimizerConfig> {
        let betas = (h.beta1, h.beta2);
        Some(match name {
            "sgd" => OptimizerConfig::Sgd {
                lr: h.lr,
                momentum: h.momentum,
                dampening: h.dampening,
                weight_decay: h.weight_decay,
                nesterov: h.nesterov,
            },
            "adam" => OptimizerConfig::Adam {
                lr: h.lr,
                betas,
                eps: h.eps,
                weight_decay: h.weight_decay,
            },
            "adamw" => OptimizerConfig::AdamW {
                lr: h.lr,
                betas,
                eps: h.eps,
                weight_decay: h.weight_decay,
            },
            _ => return None,
        })
    }

    /// The names of the hyper-parameters this kind has, as [`Hyper::fields`] names them.
    pub(crate) fn hyper_names(&self) -> &'static [&'static str] {
        match self {
            OptimizerConfig::Sgd { .. } => {
                &["lr", "momentum", "dampening", "weight_decay", "nesterov"]
            }
            _ => &["lr", "beta1", "beta2", "eps", "weight_decay"],
        }
    }

    fn validate(&self) -> Result<()> {
        let ok = |v: f32| v.is_finite() && v >= 0.0;
        let h = self.hyper();
        let betas = (0.0..1.0).contains(&h.beta1) && (0.0..1.0).contains(&h.beta2);
        let nesterov = !h.nesterov || (h.momentum > 0.0 && h.dampening == 0.0);
        let rates = [h.lr, h.momentum, h.dampening, h.weight_decay, h.eps];
        if rates.into_iter().all(ok) && betas && nesterov {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "invalid optimizer settings {self:?} (rates and decays ≥ 0, betas in [0, 1), Nesterov needs momentum > 0 and dampening 0)"
            )))
        }
    }
}

/// The hyper-parameters of every optimizer, flat: what the kernel's uniform and the
/// checkpoints store.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Hyper {
    pub lr: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
}

impl Hyper {
    /// A field by name (`nesterov` as 0 or 1).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn get(&self, name: &str) -> Option<f32> {
        Some(match name {
            "lr" => self.lr,
            "momentum" => self.momentum,
            "dampening" => self.dampening,
            "weight_decay" => self.weight_decay,
            "nesterov" => f32::from(u8::from(self.nesterov)),
            "beta1" => self.beta1,
            "beta2" => self.beta2,
            "eps" => self.eps,
            _ => return None,
        })
    }

    /// Sets a field by name; false if there is none.
    pub fn set(&mut self, name: &str, v: f32) -> bool {
        let field = match name {
            "lr" => &mut self.lr,
            "momentum" => &mut self.momentum,
            "dampening" => &mut self.dampening,
            "weight_decay" => &mut self.weight_decay,
            "nesterov" => {
                self.nesterov = v != 0.0;
                return true;
            }
            "beta1" => &mut self.beta1,
            "beta2" => &mut self.beta2,
            "eps" => &mut self.eps,
            _ => return false,
        };
        *field = v;
        true
    }
}

/// An optimizer with its state (momentum or Adam moments) on the GPU, arena-shaped.
pub struct Optimizer {
    gpu: Gpu,
    config: OptimizerConfig,
    /// Momentum buffer (SGD) or first moment (Adam).
    state1: Arc<wgpu::Buffer>,
    /// Second moment (Adam).
    state2: Arc<wgpu::Buffer>,
    /// Steps taken (PyTorch's `state["step"]`).
    steps: u64,
    /// A clip result meaning "finite", for steps without clipping.
    finite: wgpu::Buffer,
}

impl Optimizer {
    /// A fresh optimizer for `arena` (state zero, step 0).
    pub fn new(arena: &ParamArena, config: OptimizerConfig) -> Result<Optimizer> {
        config.validate()?;
        let gpu = arena.gpu().clone();
        let state_len = match config {
            OptimizerConfig::Sgd { momentum: 0.0, .. } => 1,
            _ => arena.len(),
        };
        let second_len = if matches!(config, OptimizerConfig::Sgd { .. }) {
            1
        } else {
            arena.len()
        };
        Ok(Optimizer {
            state1: Arc::new(gpu.storage_buffer("optimizer state 1", state_len)?),
            state2: Arc::new(gpu.storage_buffer("optimizer state 2", second_len)?),
            finite: gpu.storage_buffer("finite clip result", 4)?,
            gpu,
            config,
            steps: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Changes the learning rate from the next step on.
    pub fn set_lr(&mut self, new_lr: f32) {
        match &mut self.config {
            OptimizerConfig::Sgd { lr, .. }
            | OptimizerConfig::Adam { lr, .. }
            | OptimizerConfig::AdamW { lr, .. } => *lr = new_lr,
        }
    }

    /// One step: `arena`'s parameters move along its gradients. When `skip_if_nonfinite` is a
    /// clip result made with `error_if_nonfinite`, a step whose gradient norm was NaN or
    /// infinite leaves parameters and state unchanged, decided on the GPU (no readback). The
    /// step counter still advances, as the host cannot know without waiting.
    pub fn step(&mut self, arena: &ParamArena, skip_if_nonfinite: Option<&ClipNorm>) -> Result<()> {
        self.steps += 1;
        let t = self.steps as f64;
        let mut p = OptimParams {
            len: arena.len() as u32,
            ..Default::default()
        };
        if self.steps == 1 {
            p.flags |= FIRST_STEP;
        }
        if skip_if_nonfinite.is_some() {
            p.flags |= SKIP_NONFINITE;
        }
        let h = self.config.hyper();
        (p.lr, p.momentum, p.dampening, p.weight_decay) =
            (h.lr, h.momentum, h.dampening, h.weight_decay);
        (p.beta1, p.beta2, p.eps) = (h.beta1, h.beta2, h.eps);
        p.kind = match self.config {
            OptimizerConfig::Sgd { .. } => SGD,
            OptimizerConfig::Adam { .. } => ADAM,
            OptimizerConfig::AdamW { .. } => ADAMW,
        };
        if h.nesterov {
            p.flags |= NESTEROV;
        }
        // Bias corrections in f64 on the host, as PyTorch computes them from Python floats.
        p.bias_correction1 = (1.0 - (h.beta1 as f64).powf(t)) as f32;
        p.bias_correction2_sqrt = (1.0 - (h.beta2 as f64).powf(t)).sqrt() as f32;
        let clip = skip_if_nonfinite
            .map(|c| c.tensor().buffer().as_ref())
            .unwrap_or(&self.finite);
        self.gpu.record("optimizer step", |encoder| {
            let mut pass = self.gpu.compute_pass(encoder, "optimizer");
            optim::encode(
                &self.gpu,
                &mut pass,
                &p,
                &OptimBuffers {
                    params: arena.params_buffer(),
                    grads: arena.grads_buffer(),
                    state1: &self.state1,
                    state2: &self.state2,
                    clip,
                },
            )
        })
    }

    /// The names of the state tensors [`Optimizer::state`] returns.
    pub fn state_names(&self) -> &'static [&'static str] {
        match self.config {
            OptimizerConfig::Sgd { momentum: 0.0, .. } => &[],
            OptimizerConfig::Sgd { .. } => &["momentum_buffer"],
            _ => &["exp_avg", "exp_avg_sq"],
        }
    }

    /// The state tensors as (name, values) for checkpoints: `exp_avg`/`exp_avg_sq` (Adam) or
    /// `momentum_buffer` (SGD with momentum), flat over the arena, plus the step count.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn state(&self) -> Result<Vec<(&'static str, Vec<f32>)>> {
        let read = |b: &wgpu::Buffer| self.gpu.read(b, 0, (b.size() / 4) as usize);
        Ok(match self.config {
            OptimizerConfig::Sgd { momentum: 0.0, .. } => vec![],
            OptimizerConfig::Sgd { .. } => vec![("momentum_buffer", read(&self.state1)?)],
            _ => vec![
                ("exp_avg", read(&self.state1)?),
                ("exp_avg_sq", read(&self.state2)?),
            ],
        })
    }

    /// Restores what [`Optimizer::state`] returned, and the step count.
    pub fn load_state(&mut self, state: &[(String, Vec<f32>)], steps: u64) -> Result<()> {
        for (name, values) in state {
            let buffer = match name.as_str() {
                "momentum_buffer" | "exp_avg" => &self.state1,
                "exp_avg_sq" => &self.state2,
                other => return Err(Error::Invalid(format!("unknown optimizer state `{other}`"))),
            };
            if values.len() as u64 * 4 != buffer.size() {
                return Err(Error::Shape {
                    tensor: format!("optimizer.{name}"),
                    expected: format!("[{}]", buffer.size() / 4),
                    given: format!("[{}]", values.len()),
                });
            }
            self.gpu.scoped(|| {
                self.gpu
                    .queue()
                    .write_buffer(buffer, 0, bytemuck::cast_slice(values));
                Ok(())
            })?;
        }
        self.steps = steps;
        Ok(())
    }
}
