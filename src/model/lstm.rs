//! A single-layer LSTM with PyTorch's parameters, equations and layouts.

use super::arena::ParamArena;
use crate::error::{fmt_shape, Error, Result};
use crate::gpu::{check_shape, Gpu, Tensor};
use crate::kernels::gemm::{Gemm, Operand};
use crate::kernels::lstm_step::{StepBuffers, StepDims, STORE_GATES};
use crate::kernels::lstm_step_back::{StepBackBuffers, StepBackDims};
use rand::{Rng, SeedableRng};
use std::sync::Arc;

/// The shape of an LSTM, as `torch.nn.LSTM(input_size, hidden_size)` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LstmConfig {
    /// Features per input timestep, I.
    pub input_size: usize,
    /// Hidden units, H.
    pub hidden_size: usize,
    /// Seed of the initial weights.
    pub seed: u64,
}

impl LstmConfig {
    /// An LSTM from `input_size` features to `hidden_size` units, seed 0.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        LstmConfig {
            input_size,
            hidden_size,
            seed: 0,
        }
    }

    /// The same configuration with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// Gradients of a loss with respect to the forward pass's outputs; `None` means zeros.
#[derive(Default, Clone, Copy)]
pub struct OutputGrads<'a> {
    /// `dL/dy`, `[T, B, H]`.
    pub dy: Option<&'a Tensor>,
    /// `dL/dh_n`, `[1, B, H]`.
    pub dh_n: Option<&'a Tensor>,
    /// `dL/dc_n`, `[1, B, H]`.
    pub dc_n: Option<&'a Tensor>,
}

/// What the forward pass returns. Nothing is read back until asked (`Tensor::to_vec`).
pub struct LstmOutput {
    /// Outputs `[T, B, H]` (the hidden state at every step).
    pub y: Tensor,
    /// Final hidden state `[1, B, H]`.
    pub h_n: Tensor,
    /// Final cell state `[1, B, H]`.
    pub c_n: Tensor,
    /// What the backward pass needs (`Some` only from [`Lstm::forward_train`]).
    pub cache: Option<ForwardCache>,
}

/// The activations a training forward pass keeps on the GPU for [`Lstm::backward`]: the
/// activated gates `[T, B, 4H]` and the cell states `[T+1, B, H]` beyond the outputs.
pub struct ForwardCache {
    x: Tensor,
    hs: Arc<wgpu::Buffer>,
    cs: Arc<wgpu::Buffer>,
    gates: Arc<wgpu::Buffer>,
    steps: usize,
    batch: usize,
}

impl ForwardCache {
    /// Bytes held for the backward pass beyond the outputs (gates and cell states).
    pub fn activation_bytes(&self) -> u64 {
        self.gates.size() + self.cs.size()
    }
}

/// Gradients with respect to the forward pass's inputs. Parameter gradients go to the gradient
/// arena ([`Lstm::params`]).
pub struct BackwardOutput {
    /// `dL/dx`, `[T, B, I]`.
    pub dx: Tensor,
    /// `dL/dh0`, `[1, B, H]`.
    pub dh0: Tensor,
    /// `dL/dc0`, `[1, B, H]`.
    pub dc0: Tensor,
}

/// How many compute dispatches each operation records for a sequence of T steps (all in one
/// submit per operation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchCounts {
    /// Forward: the input-projection GEMM plus one fused step per timestep: T + 1.
    pub forward: usize,
    /// Backward: one fused step per timestep, one for dh0, three GEMMs (dW_ih, dW_hh, dx) and
    /// one column sum (biases): T + 5.
    pub backward: usize,
    /// Gradient clipping: sum of squares, norm and coefficient, scale: 3.
    pub clip: usize,
}

impl DispatchCounts {
    /// The counts for a sequence of `steps` timesteps.
    pub fn for_steps(steps: usize) -> DispatchCounts {
        DispatchCounts {
            forward: steps + 1,
            backward: steps + 5,
            clip: 3,
        }
    }
}

/// A single-layer LSTM on the GPU, equivalent to `torch.nn.LSTM(input_size, hidden_size)`
/// (sequence-major input `[T, B, I]`, gates i, f, g, o).
///
/// Parameters live in one arena with PyTorch's names and layouts: `weight_ih_l0 [4H, I]`,
/// `weight_hh_l0 [4H, H]`, `bias_ih_l0 [4H]`, `bias_hh_l0 [4H]`.
pub struct Lstm {
    gpu: Gpu,
    config: LstmConfig,
    arena: ParamArena,
}

/// PyTorch's parameter names for layer 0.
pub(crate) const WEIGHT_IH: &str = "weight_ih_l0";
pub(crate) const WEIGHT_HH: &str = "weight_hh_l0";
pub(crate) const BIAS_IH: &str = "bias_ih_l0";
pub(crate) const BIAS_HH: &str = "bias_hh_l0";

impl Lstm {
    /// Creates the LSTM with PyTorch's initialisation: every parameter drawn from
    /// U(-1/√H, 1/√H), seeded by `config.seed`.
    pub fn new(gpu: &Gpu, config: LstmConfig) -> Result<Lstm> {
        let (n_in, n_h) = (config.input_size, config.hidden_size);
        if n_in == 0 || n_h == 0 {
            return Err(Error::Invalid(format!(
                "input_size and hidden_size must be at least 1, got {n_in} and {n_h}"
            )));
        }
        let arena = ParamArena::new(
            gpu,
            &[
                (WEIGHT_IH.into(), vec![4 * n_h, n_in]),
                (WEIGHT_HH.into(), vec![4 * n_h, n_h]),
                (BIAS_IH.into(), vec![4 * n_h]),
                (BIAS_HH.into(), vec![4 * n_h]),
            ],
        )?;
        let bound = 1.0 / (n_h as f32).sqrt();
        let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
        let init: Vec<f32> = (0..arena.len())
            .map(|_| rng.random_range(-bound..=bound))
            .collect();
        gpu.scoped(|| {
            gpu.queue()
                .write_buffer(arena.params_buffer(), 0, bytemuck::cast_slice(&init));
            Ok(())
        })?;
        Ok(Lstm {
            gpu: gpu.clone(),
            config,
            arena,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LstmConfig {
        &self.config
    }

    /// The parameter and gradient arena (get/set parameters by PyTorch name, gradients, clip).
    pub fn params(&self) -> &ParamArena {
        &self.arena
    }

    /// The context the model lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Inference: runs `x [T, B, I]` from `h0`, `c0` (`[1, B, H]`, zeros when `None`). Keeps no
    /// activations for a backward pass.
    pub fn forward(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
    ) -> Result<LstmOutput> {
        self.run_forward(x, h0, c0, false)
    }

    /// Training forward: like [`Lstm::forward`], and keeps the gates and cell states for
    /// [`Lstm::backward`] in [`LstmOutput::cache`].
    pub fn forward_train(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
    ) -> Result<LstmOutput> {
        self.run_forward(x, h0, c0, true)
    }

    /// Checks `x` and returns (T, B).
    fn sequence_dims(&self, x: &Tensor) -> Result<(usize, usize)> {
        let n_in = self.config.input_size;
        self.same_device(x, "x")?;
        let shape = x.shape();
        if shape.len() != 3 || shape[2] != n_in || shape.contains(&0) {
            return Err(Error::Shape {
                tensor: "x".into(),
                expected: format!("[T, B, {n_in}] with T, B ≥ 1"),
                given: fmt_shape(shape),
            });
        }
        Ok((shape[0], shape[1]))
    }

    fn same_device(&self, t: &Tensor, name: &str) -> Result<()> {
        if !t.gpu().same(&self.gpu) {
            return Err(Error::Invalid(format!(
                "tensor `{name}` lives on another Gpu context than the model"
            )));
        }
        Ok(())
    }

    /// Checks an optional `[1, B, H]` state tensor.
    fn check_state(&self, t: Option<&Tensor>, name: &str, batch: usize) -> Result<()> {
        if let Some(t) = t {
            self.same_device(t, name)?;
            check_shape(name, t.shape(), &[1, batch, self.config.hidden_size])?;
        }
        Ok(())
    }

    fn run_forward(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
        train: bool,
    ) -> Result<LstmOutput> {
        let (steps, batch) = self.sequence_dims(x)?;
        self.check_state(h0, "h0", batch)?;
        self.check_state(c0, "c0", batch)?;
        let n_h = self.config.hidden_size;
        let bh = batch * n_h;
        let gpu = &self.gpu;
        gpu.scoped(|| {
            let kernels = gpu.kernels()?;
            let slots = gpu.step_slots(steps)?;

            let xproj =
                gpu.storage_buffer("input projection [T, B, 4H]", steps * batch * 4 * n_h)?;
            let hs = Arc::new(gpu.storage_buffer("hidden states [T+1, B, H]", (steps + 1) * bh)?);
            let cs_slots = if train { steps + 1 } else { 2 };
            let cs = Arc::new(gpu.storage_buffer("cell states", cs_slots * bh)?);
            let gates = Arc::new(if train {
                gpu.storage_buffer("gates [T, B, 4H]", steps * batch * 4 * n_h)?
            } else {
                gpu.storage_buffer("unused gates", 1)?
            });

            let params = self.arena.params_buffer();
            let w_ih = self.arena.view(WEIGHT_IH)?.offset;
            let w_hh = self.arena.view(WEIGHT_HH)?.offset;
            let b_ih = self.arena.view(BIAS_IH)?.offset;
            let b_hh = self.arena.view(BIAS_HH)?.offset;

            let mut encoder = gpu.encoder("lstm forward");
            // New buffers are zeroed by wgpu, so absent initial states need no clear.
            if let Some(h0) = h0 {
                encoder.copy_buffer_to_buffer(h0.buffer(), h0.byte_offset(), &hs, 0, h0.byte_len());
            }
            if let Some(c0) = c0 {
                encoder.copy_buffer_to_buffer(c0.buffer(), c0.byte_offset(), &cs, 0, c0.byte_len());
            }
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                // Hoisted input projection: one GEMM over all T·B rows, both biases folded in.
                kernels.gemm.encode(
                    gpu,
                    &mut pass,
                    &Gemm {
                        m: steps * batch,
                        n: 4 * n_h,
                        k: self.config.input_size,
                        a: Operand {
                            buffer: x.buffer(),
                            offset: x.offset(),
                            stride: self.config.input_size,
                            transposed: false,
                        },
                        b: Operand {
                            buffer: params,
                            offset: w_ih,
                            stride: self.config.input_size,
                            transposed: true,
                        },
                        c: &xproj,
                        c_offset: 0,
                        accumulate: false,
                        bias: Some((params, b_ih, Some(b_hh))),
                    },
                )?;
                let dims = StepDims {
                    batch: batch as u32,
                    hidden: n_h as u32,
                    w_offset: w_hh as u32,
                    cs_slots: cs_slots as u32,
                    flags: if train { STORE_GATES } else { 0 },
                    _pad: [0; 3],
                };
                kernels.lstm_step.encode(
                    gpu,
                    &mut pass,
                    &dims,
                    steps,
                    &slots,
                    &StepBuffers {
                        params,
                        xproj: &xproj,
                        hs: &hs,
                        cs: &cs,
                        gates: &gates,
                    },
                )?;
            }
            gpu.submit(encoder)?;

            let state_shape = [1, batch, n_h];
            Ok(LstmOutput {
                y: Tensor::view(gpu, hs.clone(), bh, &[steps, batch, n_h]),
                h_n: Tensor::view(gpu, hs.clone(), steps * bh, &state_shape),
                c_n: Tensor::view(gpu, cs.clone(), (steps % cs_slots) * bh, &state_shape),
                cache: train.then(|| ForwardCache {
                    x: x.clone(),
                    hs,
                    cs,
                    gates,
                    steps,
                    batch,
                }),
            })
        })
    }

    /// Backpropagation through time from the gradients of the outputs. Writes the parameter
    /// gradients to the gradient arena (added to what it holds when `accumulate`, else
    /// overwriting it) and returns the input gradients.
    ///
    /// Records T + 1 fused step dispatches in reverse time, then `dW_ih`, `dW_hh`, `dx` as one
    /// GEMM each over all T·B rows and the bias gradients as one column sum; submits once.
    /// Uses the parameters as they are now: change them only after `backward`.
    pub fn backward(
        &self,
        cache: &ForwardCache,
        grads: &OutputGrads<'_>,
        accumulate: bool,
    ) -> Result<BackwardOutput> {
        let (steps, batch) = (cache.steps, cache.batch);
        let (n_in, n_h) = (self.config.input_size, self.config.hidden_size);
        self.sequence_dims(&cache.x)?;
        if let Some(dy) = grads.dy {
            self.same_device(dy, "dy")?;
            check_shape("dy", dy.shape(), &[steps, batch, n_h])?;
        }
        self.check_state(grads.dh_n, "dh_n", batch)?;
        self.check_state(grads.dc_n, "dc_n", batch)?;
        let bh = batch * n_h;
        let rows = steps * batch;
        let gpu = &self.gpu;
        gpu.scoped(|| {
            let kernels = gpu.kernels()?;
            let slots = gpu.step_slots(steps)?;

            let dgates = gpu.storage_buffer("gate gradients [T, B, 4H]", rows * 4 * n_h)?;
            let state = Arc::new(gpu.storage_buffer("backward state [3, B, H]", 3 * bh)?);
            let dx = Arc::new(gpu.storage_buffer("dx [T, B, I]", rows * n_in)?);
            let zeros;
            let (dy_buffer, dy_offset) = match grads.dy {
                Some(dy) => (dy.buffer().as_ref(), dy.offset()),
                None => {
                    zeros = gpu.storage_buffer("zero dy", rows * n_h)?;
                    (&zeros, 0)
                }
            };

            let params = self.arena.params_buffer();
            let grad_arena = self.arena.grads_buffer();
            let view = |name| self.arena.view(name).map(|v| v.offset);
            let (w_ih, w_hh, b_ih, b_hh) = (
                view(WEIGHT_IH)?,
                view(WEIGHT_HH)?,
                view(BIAS_IH)?,
                view(BIAS_HH)?,
            );

            let mut encoder = gpu.encoder("lstm backward");
            for (src, slot) in [(grads.dh_n, 0), (grads.dc_n, 1)] {
                if let Some(src) = src {
                    let dst = (slot * bh * 4) as u64;
                    encoder.copy_buffer_to_buffer(
                        src.buffer(),
                        src.byte_offset(),
                        &state,
                        dst,
                        src.byte_len(),
                    );
                }
            }
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                kernels.lstm_step_back.encode(
                    gpu,
                    &mut pass,
                    &StepBackDims {
                        batch: batch as u32,
                        hidden: n_h as u32,
                        w_offset: w_hh as u32,
                        steps: steps as u32,
                        dy_offset: dy_offset as u32,
                        _pad: [0; 3],
                    },
                    &slots,
                    &StepBackBuffers {
                        params,
                        gates: &cache.gates,
                        cs: &cache.cs,
                        dy: dy_buffer,
                        dgates: &dgates,
                        state: &state,
                    },
                )?;
                // dG [T·B, 4H] as the left operand, transposed for the weight gradients.
                let dg_t = Operand {
                    buffer: &dgates,
                    offset: 0,
                    stride: 4 * n_h,
                    transposed: true,
                };
                // dW_ih = dGᵀ · x
                kernels.gemm.encode(
                    gpu,
                    &mut pass,
                    &Gemm {
                        m: 4 * n_h,
                        n: n_in,
                        k: rows,
                        a: dg_t,
                        b: Operand {
                            buffer: cache.x.buffer(),
                            offset: cache.x.offset(),
                            stride: n_in,
                            transposed: false,
                        },
                        c: grad_arena,
                        c_offset: w_ih,
                        accumulate,
                        bias: None,
                    },
                )?;
                // dW_hh = dGᵀ · h_{t-1}, the hidden states hs[0..T].
                kernels.gemm.encode(
                    gpu,
                    &mut pass,
                    &Gemm {
                        m: 4 * n_h,
                        n: n_h,
                        k: rows,
                        a: dg_t,
                        b: Operand {
                            buffer: &cache.hs,
                            offset: 0,
                            stride: n_h,
                            transposed: false,
                        },
                        c: grad_arena,
                        c_offset: w_hh,
                        accumulate,
                        bias: None,
                    },
                )?;
                // dx = dG · W_ih
                kernels.gemm.encode(
                    gpu,
                    &mut pass,
                    &Gemm {
                        m: rows,
                        n: n_in,
                        k: 4 * n_h,
                        a: Operand {
                            transposed: false,
                            ..dg_t
                        },
                        b: Operand {
                            buffer: params,
                            offset: w_ih,
                            stride: n_in,
                            transposed: false,
                        },
                        c: &dx,
                        c_offset: 0,
                        accumulate: false,
                        bias: None,
                    },
                )?;
                // db_ih = db_hh = Σ_rows dG
                kernels.column_sum.encode(
                    gpu,
                    &mut pass,
                    &dgates,
                    rows,
                    4 * n_h,
                    grad_arena,
                    (b_ih, b_hh),
                    accumulate,
                )?;
            }
            gpu.submit(encoder)?;

            let state_shape = [1, batch, n_h];
            Ok(BackwardOutput {
                dx: Tensor::view(gpu, dx, 0, &[steps, batch, n_in]),
                dh0: Tensor::view(gpu, state.clone(), 2 * bh, &state_shape),
                dc0: Tensor::view(gpu, state, bh, &state_shape),
            })
        })
    }
}
