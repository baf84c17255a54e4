//! The LSTM: `torch.nn.LSTM` on the GPU — stacked, bidirectional, variable-length, stateful.

use super::arena::ParamArena;
use super::config::{Cell, LstmConfig, ParamNames};
use crate::error::{fmt_shape, Error, Result};
use crate::gpu::{check_shape, Gpu, Tensor};
use crate::kernels::gemm::{Gemm, Operand};
use crate::kernels::lstm_step::{StepBuffers, StepDims, LENGTHS, REVERSE, STORE_GATES};
use crate::kernels::lstm_step_back::{StepBackBuffers, StepBackDims, PROBE, STATE_SLOTS};
use crate::kernels::sequence::SequenceCopy;
use crate::kernels::Kernels;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Options of one forward pass.
#[derive(Default, Clone, Copy)]
pub struct ForwardOptions<'a> {
    /// Initial hidden state `[L·D, B, H]`; zeros when `None`.
    pub h0: Option<&'a Tensor>,
    /// Initial cell state `[L·D, B, H]`; zeros when `None`.
    pub c0: Option<&'a Tensor>,
    /// Length of each sequence (`[B]`, each in 1..=T), like a `PackedSequence`: outputs past a
    /// sequence's end are zero and `h_n`, `c_n` hold each sequence's state at its own end.
    pub lengths: Option<&'a [usize]>,
    /// Keep what the backward pass needs (and apply dropout between layers).
    pub train: bool,
}

/// Gradients of a loss with respect to the forward pass's outputs; `None` means zeros.
#[derive(Default, Clone, Copy)]
pub struct OutputGrads<'a> {
    /// `dL/dy`, shaped like `y`.
    pub dy: Option<&'a Tensor>,
    /// `dL/dh_n`, `[L·D, B, H]`.
    pub dh_n: Option<&'a Tensor>,
    /// `dL/dc_n`, `[L·D, B, H]`.
    pub dc_n: Option<&'a Tensor>,
}

/// What the forward pass returns. Nothing is read back until asked (`Tensor::to_vec`).
pub struct LstmOutput {
    /// Outputs `[T, B, D·H]` (`[B, T, D·H]` batch-first): the last layer's hidden states.
    pub y: Tensor,
    /// Final hidden states `[L·D, B, H]`.
    pub h_n: Tensor,
    /// Final cell states `[L·D, B, H]`.
    pub c_n: Tensor,
    /// What the backward pass needs (`Some` only when training).
    pub cache: Option<ForwardCache>,
}

/// The activations a training forward pass keeps on the GPU for [`Lstm::backward`].
pub struct ForwardCache {
    /// The model that made it (its parameter buffer) and its configuration.
    model: usize,
    config: LstmConfig,
    steps: usize,
    batch: usize,
    layers: Vec<LayerCache>,
    /// `[2, L·D, B, H]`: h0 then c0.
    init: Arc<wgpu::Buffer>,
    lengths: Option<Arc<wgpu::Buffer>>,
}

struct LayerCache {
    /// The layer's time-major input `[T, B, in]` (after dropout).
    input: Arc<wgpu::Buffer>,
    input_offset: usize,
    /// `[T, B, D·H]`: hidden and cell states of every step.
    hs: Arc<wgpu::Buffer>,
    cs: Arc<wgpu::Buffer>,
    /// Per direction, activated gates `[T, B, 4H]`.
    gates: Vec<Arc<wgpu::Buffer>>,
    /// Seed of the dropout applied to this layer's input.
    dropout_seed: Option<u32>,
}

impl ForwardCache {
    /// Bytes held for the backward pass beyond the outputs: gates and cell states of every
    /// layer and direction (`T·B·5H` floats each), plus the hidden states of the layers below the
    /// last and the dropped-out inputs.
    pub fn activation_bytes(&self) -> u64 {
        let last = self.layers.len() - 1;
        self.layers
            .iter()
            .enumerate()
            .map(|(l, c)| {
                let gates: u64 = c.gates.iter().map(|g| g.size()).sum();
                let hs = if l == last { 0 } else { c.hs.size() };
                let dropped = if c.dropout_seed.is_some() {
                    c.input.size()
                } else {
                    0
                };
                gates + c.cs.size() + hs + dropped
            })
            .sum()
    }
}

/// Gradients with respect to the forward pass's inputs. Parameter gradients go to the gradient
/// arena ([`Lstm::params`]).
pub struct BackwardOutput {
    /// `dL/dx`, shaped like `x`.
    pub dx: Tensor,
    /// `dL/dh0`, `[L·D, B, H]`.
    pub dh0: Tensor,
    /// `dL/dc0`, `[L·D, B, H]`.
    pub dc0: Tensor,
}

/// Per-step measurements of the gradient flowing back through time, for a loss at the last
/// step (see [`Lstm::backward_probed`]). Index k is the timestep; norms are over the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct GradientProbes {
    /// ‖∂L/∂h_k‖₂.
    pub dh_norm: Vec<f32>,
    /// ‖∂L/∂c_k‖₂ (LSTM).
    pub dc_norm: Vec<f32>,
    /// ‖t₀(k)‖₂: the explicit path through the cell states only.
    pub path_norm: Vec<f32>,
    /// Mean over the batch and units of the forget-gate product f_{T-1} ⊙ … ⊙ f_{k+1}.
    pub forget_product_mean: Vec<f32>,
}

/// How many compute dispatches each operation records per layer and direction for T steps
/// (each operation is one submit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchCounts {
    /// Forward: the input-projection GEMM plus one fused step per timestep: T + 1.
    pub forward: usize,
    /// Backward: one fused step per timestep, one for dh0, four GEMMs (dW_ih, dW_hh as the
    /// steps after the first plus the first step's initial state, dx) and one column sum for the
    /// biases: T + 6.
    pub backward: usize,
    /// Gradient clipping, for the whole model: sum of squares, norm and coefficient, scale: 3.
    pub clip: usize,
}

impl DispatchCounts {
    /// The counts for a sequence of `steps` timesteps.
    pub fn for_steps(steps: usize) -> DispatchCounts {
        DispatchCounts {
            forward: steps + 1,
            backward: steps + 6,
            clip: 3,
        }
    }
}

/// An LSTM on the GPU, equivalent to `torch.nn.LSTM` with the same [`LstmConfig`].
///
/// Parameters live in one arena with PyTorch's names, shapes and `state_dict` order
/// (`weight_ih_l0 [4H, I]`, `weight_hh_l0 [4H, H]`, `bias_ih_l0 [4H]`, `bias_hh_l0 [4H]`,
/// `…_reverse`, `…_l1`, …), gates in the order i, f, g, o.
pub struct Lstm {
    gpu: Gpu,
    config: LstmConfig,
    arena: ParamArena,
    /// Training forward passes so far: each draws a new dropout mask.
    dropout_calls: AtomicU64,
}

/// Element offsets of one layer and direction's parameters in the arena.
struct Offsets {
    w_ih: usize,
    w_hh: usize,
    bias: Option<(usize, usize)>,
}

impl Lstm {
    /// Creates the LSTM with PyTorch's initialisation: every parameter drawn from
    /// U(-1/√H, 1/√H), seeded by `config.seed`.
    pub fn new(gpu: &Gpu, config: LstmConfig) -> Result<Lstm> {
        Lstm::with_extra_params(gpu, config, &[])
    }

    /// Like [`Lstm::new`], with further tensors (e.g. an output layer) appended to the same
    /// parameter arena, so that one clip and one optimizer step cover the whole model. They are
    /// initialised like the LSTM's and appear in [`Lstm::state_dict`] under their own names.
    pub fn with_extra_params(
        gpu: &Gpu,
        config: LstmConfig,
        extra: &[(String, Vec<usize>)],
    ) -> Result<Lstm> {
        config.validate()?;
        let mut tensors = config.parameter_shapes();
        tensors.extend_from_slice(extra);
        let arena = ParamArena::new(gpu, &tensors)?;
        let bound = 1.0 / (config.hidden_size as f32).sqrt();
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
            dropout_calls: AtomicU64::new(0),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LstmConfig {
        &self.config
    }

    /// Sets the count of training forward passes so far, from which dropout masks are drawn
    /// (a resumed run sets it to its step count to redraw the masks of the run that never
    /// stopped).
    pub fn set_training_calls(&self, calls: u64) {
        self.dropout_calls.store(calls, Ordering::Relaxed);
    }

    /// The parameter and gradient arena (get/set parameters by PyTorch name, gradients, clip).
    pub fn params(&self) -> &ParamArena {
        &self.arena
    }

    /// The context the model lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Inference from `h0`, `c0` (`[L·D, B, H]`, zeros when `None`); keeps no activations.
    pub fn forward(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
    ) -> Result<LstmOutput> {
        self.run(
            x,
            &ForwardOptions {
                h0,
                c0,
                ..Default::default()
            },
        )
    }

    /// Training forward: like [`Lstm::forward`], and keeps what [`Lstm::backward`] needs in
    /// [`LstmOutput::cache`].
    pub fn forward_train(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
    ) -> Result<LstmOutput> {
        self.run(
            x,
            &ForwardOptions {
                h0,
                c0,
                train: true,
                ..Default::default()
            },
        )
    }

    /// The forward pass over `x` (`[T, B, I]`, or `[B, T, I]` batch-first) with all options.
    ///
    /// Per layer and direction it records one GEMM for the input projection of all T·B rows and
    /// one fused dispatch per timestep; everything goes into one encoder and one submit.
    /// For streaming, pass a call's `h_n`, `c_n` as the next call's `h0`, `c0`: the state stays
    /// on the GPU.
    pub fn run(&self, x: &Tensor, opts: &ForwardOptions<'_>) -> Result<LstmOutput> {
        let (steps, batch) = self.sequence_dims(x, "x", self.config.input_size)?;
        self.check_state(opts.h0, "h0", batch)?;
        self.check_state(opts.c0, "c0", batch)?;
        check_lengths(opts.lengths, steps, batch)?;
        let cfg = self.config;
        let (n_h, dirs, layers) = (cfg.hidden_size, cfg.directions(), cfg.num_layers);
        let state_len = layers * dirs * batch * n_h;
        let gates_h = cfg.gates() * n_h;
        let rnn = cfg.cell == Cell::Rnn;
        let rows = steps * batch;
        let gpu = &self.gpu;
        let train = opts.train;
        let call = if train {
            self.dropout_calls.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        gpu.scoped(|| {
            let kernels = gpu.kernels()?;
            // Per-step uniform slots only where the timestep cannot be immediate data.
            let slots = if kernels.lstm_step.uses_immediates() {
                None
            } else {
                Some(gpu.step_slots(steps)?)
            };
            // Activations come from the device's scratch pool (reused when a call repeats the
            // sizes of one whose results were dropped); each is overwritten or cleared below.
            let init = gpu.scratch("initial states [2, L·D, B, H]", 2 * state_len)?;
            let last = gpu.scratch("final states [2, L·D, B, H]", 2 * state_len)?;
            let lengths = match opts.lengths {
                Some(l) => {
                    let l: Vec<u32> = l.iter().map(|&v| v as u32).collect();
                    Some(gpu.scratch_init("lengths", &l)?)
                }
                None => None,
            };
            let no_lengths = gpu.scratch("no lengths (unread)", 1)?;
            let lengths_buffer = lengths.as_deref().unwrap_or(&no_lengths);
            let xproj = gpu.scratch("input projection [T, B, G·H]", rows * gates_h)?;

            let mut encoder = gpu.encoder("lstm forward");
            for (i, state) in [opts.h0, opts.c0].into_iter().enumerate() {
                let dst = (i * state_len * 4) as u64;
                match state {
                    Some(s) => encoder.copy_buffer_to_buffer(
                        s.buffer(),
                        s.byte_offset(),
                        &init,
                        dst,
                        s.byte_len(),
                    ),
                    None => encoder.clear_buffer(&init, dst, Some((state_len * 4) as u64)),
                }
            }
            // A vanilla RNN has no cell state: its c_n reads as zeros.
            if rnn {
                let c_half = (state_len * 4) as u64;
                encoder.clear_buffer(&last, c_half, Some(c_half));
            }
            let mut caches = Vec::with_capacity(layers);
            // Training keeps its own copy of x: the caller may reuse its buffer before backward.
            let x_copy = if train && !cfg.batch_first {
                let copy = gpu.scratch("x kept for backward", x.len())?;
                encoder.copy_buffer_to_buffer(x.buffer(), x.byte_offset(), &copy, 0, x.byte_len());
                Some(copy)
            } else {
                None
            };
            let y;
            {
                let mut pass = gpu.compute_pass(&mut encoder, "layout");
                // The time-major input of layer 0.
                let (mut input, mut input_offset) = if cfg.batch_first {
                    let t = self.sequence_copy(
                        &kernels,
                        &mut pass,
                        x.buffer(),
                        x.offset(),
                        [steps, batch, cfg.input_size],
                        (true, false),
                        None,
                        None,
                    )?;
                    (t, 0)
                } else if let Some(copy) = x_copy {
                    (copy, 0)
                } else {
                    (x.buffer().clone(), x.offset())
                };
                for l in 0..layers {
                    let in_size = cfg.layer_input_size(l);
                    let mut dropout_seed = None;
                    if l > 0 && train && cfg.dropout > 0.0 {
                        drop(pass);
                        pass = gpu.compute_pass(&mut encoder, "layout");
                        let seed = dropout_seed_for(cfg.seed, call, l);
                        input = self.sequence_copy(
                            &kernels,
                            &mut pass,
                            &input,
                            input_offset,
                            [steps, batch, in_size],
                            (false, false),
                            None,
                            Some((cfg.dropout, seed)),
                        )?;
                        input_offset = 0;
                        dropout_seed = Some(seed);
                    }
                    let cs_slots = if train { steps } else { 2 };
                    let hs = gpu.scratch("hidden states [T, B, D·H]", rows * dirs * n_h)?;
                    // A vanilla RNN keeps no cell state and no gates.
                    let cs_len = if rnn {
                        1
                    } else {
                        cs_slots * batch * dirs * n_h
                    };
                    let cs = gpu.scratch("cell states [slots, B, D·H]", cs_len)?;
                    let mut gates = Vec::with_capacity(dirs);
                    for d in 0..dirs {
                        let o = self.offsets(l, d)?;
                        // Steps past a sequence's length leave their gates unwritten; the
                        // backward pass does not read them.
                        let g = if train && !rnn {
                            gpu.scratch("gates [T, B, 4H]", rows * gates_h)?
                        } else {
                            gpu.scratch("unused gates", 1)?
                        };
                        let params = self.arena.params_buffer();
                        drop(pass);
                        pass = gpu.compute_pass(&mut encoder, "projection");
                        kernels.gemm.encode(
                            gpu,
                            &mut pass,
                            &Gemm {
                                m: rows,
                                n: gates_h,
                                k: in_size,
                                a: Operand {
                                    buffer: &input,
                                    offset: input_offset,
                                    stride: in_size,
                                    transposed: false,
                                },
                                b: Operand {
                                    buffer: params,
                                    offset: o.w_ih,
                                    stride: in_size,
                                    transposed: true,
                                },
                                c: &xproj,
                                c_offset: 0,
                                accumulate: false,
                                bias: o
                                    .bias
                                    .map(|(b_ih, b_hh)| (params.as_ref(), b_ih, Some(b_hh))),
                            },
                        )?;
                        let state = (l * dirs + d) * batch * n_h;
                        let mut flags = if train { STORE_GATES } else { 0 };
                        if d == 1 {
                            flags |= REVERSE;
                        }
                        if lengths.is_some() {
                            flags |= LENGTHS;
                        }
                        let dims = StepDims {
                            batch: batch as u32,
                            hidden: n_h as u32,
                            steps: steps as u32,
                            flags,
                            w_offset: o.w_hh as u32,
                            cs_slots: cs_slots as u32,
                            row_stride: (dirs * n_h) as u32,
                            col_offset: (d * n_h) as u32,
                            h_state: state as u32,
                            c_state: (state_len + state) as u32,
                            _pad: [0; 2],
                        };
                        drop(pass);
                        pass = gpu.compute_pass(&mut encoder, "recurrence");
                        kernels.lstm_step.encode(
                            gpu,
                            cfg.cell,
                            &mut pass,
                            &dims,
                            slots.as_deref(),
                            &StepBuffers {
                                params,
                                xproj: &xproj,
                                lengths: lengths_buffer,
                                init: &init,
                                hs: &hs,
                                cs: &cs,
                                gates: &g,
                                last: &last,
                            },
                        )?;
                        gates.push(g);
                    }
                    caches.push(LayerCache {
                        input: input.clone(),
                        input_offset,
                        hs: hs.clone(),
                        cs,
                        gates,
                        dropout_seed,
                    });
                    input = hs;
                    input_offset = 0;
                }
                drop(pass);
                pass = gpu.compute_pass(&mut encoder, "layout");
                // `input` now holds the last layer's hidden states: the output, unless padding
                // must read as zeros or the caller wants batch-first.
                let y_shape = if cfg.batch_first {
                    [batch, steps, dirs * n_h]
                } else {
                    [steps, batch, dirs * n_h]
                };
                y = if lengths.is_some() || cfg.batch_first {
                    let out = self.sequence_copy(
                        &kernels,
                        &mut pass,
                        &input,
                        0,
                        [steps, batch, dirs * n_h],
                        (false, cfg.batch_first),
                        lengths.as_deref(),
                        None,
                    )?;
                    Tensor::view(gpu, out, 0, &y_shape)
                } else {
                    Tensor::view(gpu, input, 0, &y_shape)
                };
            }
            gpu.submit(encoder)?;
            let state_shape = [layers * dirs, batch, n_h];
            Ok(LstmOutput {
                y,
                h_n: Tensor::view(gpu, last.clone(), 0, &state_shape),
                c_n: Tensor::view(gpu, last, state_len, &state_shape),
                cache: train.then(|| ForwardCache {
                    model: self.id(),
                    config: cfg,
                    steps,
                    batch,
                    layers: caches,
                    init,
                    lengths,
                }),
            })
        })
    }

    /// Backpropagation through time from the gradients of the outputs. Writes the parameter
    /// gradients to the gradient arena (added to what it holds when `accumulate`, else
    /// overwriting it) and returns the input gradients.
    ///
    /// Per layer and direction (top layer first): T + 1 fused step dispatches in the reverse of
    /// the forward order, then `dW_ih`, `dW_hh` and `dx` as GEMMs over all T·B rows and the bias
    /// gradients as one column sum. One submit. Uses the parameters as they are now: change them
    /// only after `backward`.
    pub fn backward(
        &self,
        cache: &ForwardCache,
        grads: &OutputGrads<'_>,
        accumulate: bool,
    ) -> Result<BackwardOutput> {
        self.backward_impl(cache, grads, accumulate, None)
    }

    /// [`Lstm::backward`] that also measures how the gradient flows back through time (the
    /// gradient-flow lab): for every step k of the top layer's forward direction, the norms
    /// over the batch of ∂L/∂h_k and ∂L/∂c_k, of the explicit cell path
    /// t₀ = ∂L/∂h_{T-1} ⊙ o_{T-1} ⊙ tanh'(c_{T-1}) ⊙ f_{T-1} ⊙ … ⊙ f_{k+1}, and the mean of the
    /// forget-gate product f_{T-1} ⊙ … ⊙ f_{k+1}. Recorded by the backward kernel and reduced by
    /// one norm dispatch on the GPU; read back once.
    pub fn backward_probed(
        &self,
        cache: &ForwardCache,
        grads: &OutputGrads<'_>,
        accumulate: bool,
    ) -> Result<(BackwardOutput, GradientProbes)> {
        let (steps, bh) = (cache.steps, cache.batch * self.config.hidden_size);
        let gpu = &self.gpu;
        let probes = gpu.storage_buffer("gradient probes [4, T, B, H]", 4 * steps * bh)?;
        let out = self.backward_impl(cache, grads, accumulate, Some(&probes))?;
        let kernels = gpu.kernels()?;
        let stats = gpu.record("gradient probe norms", |encoder| {
            let stats = Arc::new(gpu.storage_buffer("probe norms [4·T, 2]", 8 * steps)?);
            let mut pass = gpu.compute_pass(encoder, "probes");
            kernels
                .reduce
                .encode_row_norms(gpu, &mut pass, &probes, 4 * steps, bh, &stats)?;
            Ok(Tensor::view(gpu, stats, 0, &[4, steps, 2]))
        })?;
        let v = stats.to_vec()?;
        let column =
            |row: usize, col: usize| (0..steps).map(|k| v[(row * steps + k) * 2 + col]).collect();
        Ok((
            out,
            GradientProbes {
                dh_norm: column(0, 0),
                dc_norm: column(1, 0),
                path_norm: column(2, 0),
                forget_product_mean: column(3, 1),
            },
        ))
    }

    fn backward_impl(
        &self,
        cache: &ForwardCache,
        grads: &OutputGrads<'_>,
        accumulate: bool,
        probes: Option<&wgpu::Buffer>,
    ) -> Result<BackwardOutput> {
        let cfg = self.config;
        let (steps, batch) = (cache.steps, cache.batch);
        let (n_h, dirs, layers) = (cfg.hidden_size, cfg.directions(), cfg.num_layers);
        let y_shape: [usize; 3] = if cfg.batch_first {
            [batch, steps, dirs * n_h]
        } else {
            [steps, batch, dirs * n_h]
        };
        if let Some(dy) = grads.dy {
            self.same_device(dy, "dy")?;
            check_shape("dy", dy.shape(), &y_shape)?;
        }
        self.check_state(grads.dh_n, "dh_n", batch)?;
        self.check_state(grads.dc_n, "dc_n", batch)?;
        if cache.model != self.id() || cache.config != cfg {
            return Err(Error::Invalid(
                "the forward cache comes from another model (or the model's configuration changed)"
                    .into(),
            ));
        }
        let state_len = layers * dirs * batch * n_h;
        let gates_h = cfg.gates() * n_h;
        let rnn = cfg.cell == Cell::Rnn;
        let bh = batch * n_h;
        let rows = steps * batch;
        let gpu = &self.gpu;
        gpu.scoped(|| {
            let kernels = gpu.kernels()?;
            // Per-step uniform slots only where the timestep cannot be immediate data.
            let slots = if kernels.lstm_step.uses_immediates() {
                None
            } else {
                Some(gpu.step_slots(steps)?)
            };
            let no_lengths = gpu.scratch("no lengths (unread)", 1)?;
            let lengths_buffer = cache.lengths.as_deref().unwrap_or(&no_lengths);
            // Scratch buffers as in `run`: the step kernels write every gate gradient; the
            // states are cleared below.
            let dgates: Vec<Arc<wgpu::Buffer>> = (0..dirs)
                .map(|_| gpu.scratch("gate gradients [T, B, G·H]", rows * gates_h))
                .collect::<Result<_>>()?;
            let states: Vec<Arc<wgpu::Buffer>> = (0..layers * dirs)
                .map(|_| gpu.scratch("backward state", STATE_SLOTS * bh))
                .collect::<Result<_>>()?;
            let no_probes = gpu.scratch("no probes", 1)?;
            let dh0 = gpu.scratch("dh0 [L·D, B, H]", state_len)?;
            let dc0 = gpu.scratch("dc0 [L·D, B, H]", state_len)?;

            let mut encoder = gpu.encoder("lstm backward");
            // Carries and probe products start at zero unless set from dh_n, dc_n below.
            for state in &states {
                encoder.clear_buffer(state, 0, None);
            }
            // The top layer's output gradient: the caller's, or zeros.
            let (dy_buffer, dy_start) = match grads.dy {
                Some(g) => (g.buffer().clone(), g.offset()),
                None => {
                    let zeros = gpu.scratch("zero dy", rows * dirs * n_h)?;
                    encoder.clear_buffer(&zeros, 0, None);
                    (zeros, 0)
                }
            };
            // The kernel reads c_0 from slot 3 of the state.
            for (i, state) in states.iter().enumerate() {
                let c0 = ((state_len + i * bh) * 4) as u64;
                encoder.copy_buffer_to_buffer(
                    &cache.init,
                    c0,
                    state,
                    (3 * bh * 4) as u64,
                    (bh * 4) as u64,
                );
            }
            // The carries start as dh_n and dc_n (an RNN has no cell state: dc0 stays zero).
            let dc_n = if rnn { None } else { grads.dc_n };
            for (slot, src) in [grads.dh_n, dc_n].into_iter().enumerate() {
                if let Some(src) = src {
                    for (i, state) in states.iter().enumerate() {
                        let from = src.byte_offset() + (i * bh * 4) as u64;
                        encoder.copy_buffer_to_buffer(
                            src.buffer(),
                            from,
                            state,
                            (slot * bh * 4) as u64,
                            (bh * 4) as u64,
                        );
                    }
                }
            }
            let dx;
            {
                let mut pass = gpu.compute_pass(&mut encoder, "layout");
                // The time-major gradient of the top layer's output.
                let (mut dy, mut dy_offset) = if grads.dy.is_some() && cfg.batch_first {
                    let t = self.sequence_copy(
                        &kernels,
                        &mut pass,
                        &dy_buffer,
                        dy_start,
                        [steps, batch, dirs * n_h],
                        (true, false),
                        None,
                        None,
                    )?;
                    (t, 0)
                } else {
                    (dy_buffer, dy_start)
                };
                let mut dx_layer = None;
                for l in (0..layers).rev() {
                    let lc = &cache.layers[l];
                    let in_size = cfg.layer_input_size(l);
                    let dx_l = gpu.scratch("input gradient [T, B, in]", rows * in_size)?;
                    for (d, dg) in dgates.iter().enumerate() {
                        let o = self.offsets(l, d)?;
                        let state_index = l * dirs + d;
                        let reverse = d == 1;
                        let mut flags = if reverse { REVERSE } else { 0 };
                        if cache.lengths.is_some() {
                            flags |= LENGTHS;
                        }
                        let probe_here = probes.is_some() && l == layers - 1 && d == 0;
                        if probe_here {
                            flags |= PROBE;
                        }
                        let params = self.arena.params_buffer();
                        drop(pass);
                        pass = gpu.compute_pass(&mut encoder, "recurrence backward");
                        kernels.lstm_step_back.encode(
                            gpu,
                            cfg.cell,
                            &mut pass,
                            &StepBackDims {
                                batch: batch as u32,
                                hidden: n_h as u32,
                                steps: steps as u32,
                                flags,
                                w_offset: o.w_hh as u32,
                                dy_offset: (dy_offset + d * n_h) as u32,
                                row_stride: (dirs * n_h) as u32,
                                col_offset: (d * n_h) as u32,
                                _pad: [0; 4],
                            },
                            slots.as_deref(),
                            &StepBackBuffers {
                                params,
                                gates: &lc.gates[d],
                                // The RNN kernel reads its hidden states where the LSTM reads c.
                                cs: if rnn { &lc.hs } else { &lc.cs },
                                dy: &dy,
                                lengths: lengths_buffer,
                                dgates: dg,
                                state: &states[state_index],
                                probes: if probe_here {
                                    probes.unwrap_or(&no_probes)
                                } else {
                                    &no_probes
                                },
                            },
                        )?;
                        drop(pass);
                        pass = gpu.compute_pass(&mut encoder, "weight and input gradients");
                        self.encode_weight_grads(
                            &kernels, &mut pass, cache, l, d, &o, dg, accumulate,
                        )?;
                        // The layer's input gradient: Σ over directions of dG · W_ih.
                        kernels.gemm.encode(
                            gpu,
                            &mut pass,
                            &Gemm {
                                m: rows,
                                n: in_size,
                                k: gates_h,
                                a: Operand {
                                    buffer: dg,
                                    offset: 0,
                                    stride: gates_h,
                                    transposed: false,
                                },
                                b: Operand {
                                    buffer: params,
                                    offset: o.w_ih,
                                    stride: in_size,
                                    transposed: false,
                                },
                                c: &dx_l,
                                c_offset: 0,
                                accumulate: d > 0,
                                bias: None,
                            },
                        )?;
                    }
                    drop(pass);
                    pass = gpu.compute_pass(&mut encoder, "layout");
                    if l > 0 {
                        // The gradient of the layer below's output: through dropout if applied.
                        dy = match lc.dropout_seed {
                            Some(seed) => self.sequence_copy(
                                &kernels,
                                &mut pass,
                                &dx_l,
                                0,
                                [steps, batch, in_size],
                                (false, false),
                                None,
                                Some((cfg.dropout, seed)),
                            )?,
                            None => dx_l,
                        };
                        dy_offset = 0;
                    } else {
                        dx_layer = Some(dx_l);
                    }
                }
                let dx_l = dx_layer.expect("layer 0 ran");
                let x_shape = if cfg.batch_first {
                    [batch, steps, cfg.input_size]
                } else {
                    [steps, batch, cfg.input_size]
                };
                dx = if cfg.batch_first {
                    let t = self.sequence_copy(
                        &kernels,
                        &mut pass,
                        &dx_l,
                        0,
                        [steps, batch, cfg.input_size],
                        (false, true),
                        None,
                        None,
                    )?;
                    Tensor::view(gpu, t, 0, &x_shape)
                } else {
                    Tensor::view(gpu, dx_l, 0, &x_shape)
                };
            }
            for (i, state) in states.iter().enumerate() {
                let at = (i * bh * 4) as u64;
                encoder.copy_buffer_to_buffer(
                    state,
                    (2 * bh * 4) as u64,
                    &dh0,
                    at,
                    (bh * 4) as u64,
                );
                encoder.copy_buffer_to_buffer(state, (bh * 4) as u64, &dc0, at, (bh * 4) as u64);
            }
            gpu.submit(encoder)?;
            let state_shape = [layers * dirs, batch, n_h];
            Ok(BackwardOutput {
                dx,
                dh0: Tensor::view(gpu, dh0, 0, &state_shape),
                dc0: Tensor::view(gpu, dc0, 0, &state_shape),
            })
        })
    }

    /// Records `dW_ih`, `dW_hh` and the bias gradients of layer `l`, direction `d` from its gate
    /// gradients `dg [T·B, 4H]`.
    #[allow(clippy::too_many_arguments)]
    fn encode_weight_grads(
        &self,
        kernels: &Kernels,
        pass: &mut wgpu::ComputePass<'_>,
        cache: &ForwardCache,
        l: usize,
        d: usize,
        o: &Offsets,
        dg: &wgpu::Buffer,
        accumulate: bool,
    ) -> Result<()> {
        let cfg = &self.config;
        let (steps, batch) = (cache.steps, cache.batch);
        let (n_h, dirs) = (cfg.hidden_size, cfg.directions());
        let (rows, in_size, four_h) = (
            steps * batch,
            cfg.layer_input_size(l),
            cfg.gates() * cfg.hidden_size,
        );
        let lc = &cache.layers[l];
        let grads = self.arena.grads_buffer();
        let gpu = &self.gpu;
        let dg_t = |row: usize| Operand {
            buffer: dg,
            offset: row * four_h,
            stride: four_h,
            transposed: true,
        };
        // dW_ih = dGᵀ · input
        kernels.gemm.encode(
            gpu,
            pass,
            &Gemm {
                m: four_h,
                n: in_size,
                k: rows,
                a: dg_t(0),
                b: Operand {
                    buffer: &lc.input,
                    offset: lc.input_offset,
                    stride: in_size,
                    transposed: false,
                },
                c: grads,
                c_offset: o.w_ih,
                accumulate,
                bias: None,
            },
        )?;
        // dW_hh = Σ_t dG_tᵀ · h_prev(t): the steps that read a previous step's h (one GEMM over
        // (T-1)·B rows of hs), plus the step that read the initial state (B rows).
        let (first_row, prev_row) = if d == 1 { (0, batch) } else { (batch, 0) };
        kernels.gemm.encode(
            gpu,
            pass,
            &Gemm {
                m: four_h,
                n: n_h,
                k: rows - batch,
                a: dg_t(first_row),
                b: Operand {
                    buffer: &lc.hs,
                    offset: prev_row * dirs * n_h + d * n_h,
                    stride: dirs * n_h,
                    transposed: false,
                },
                c: grads,
                c_offset: o.w_hh,
                accumulate,
                bias: None,
            },
        )?;
        let init_step = if d == 1 { steps - 1 } else { 0 };
        let h_state = (l * dirs + d) * batch * n_h;
        kernels.gemm.encode(
            gpu,
            pass,
            &Gemm {
                m: four_h,
                n: n_h,
                k: batch,
                a: dg_t(init_step * batch),
                b: Operand {
                    buffer: &cache.init,
                    offset: h_state,
                    stride: n_h,
                    transposed: false,
                },
                c: grads,
                c_offset: o.w_hh,
                accumulate: true,
                bias: None,
            },
        )?;
        if let Some((b_ih, b_hh)) = o.bias {
            kernels.column_sum.encode(
                gpu,
                pass,
                dg,
                rows,
                four_h,
                grads,
                (b_ih, b_hh),
                accumulate,
            )?;
        }
        Ok(())
    }

    /// Records a sequence copy into a new buffer and returns it.
    #[allow(clippy::too_many_arguments)]
    fn sequence_copy(
        &self,
        kernels: &Kernels,
        pass: &mut wgpu::ComputePass<'_>,
        src: &wgpu::Buffer,
        src_offset: usize,
        [steps, batch, features]: [usize; 3],
        (src_batch_first, dst_batch_first): (bool, bool),
        lengths: Option<&wgpu::Buffer>,
        dropout: Option<(f32, u32)>,
    ) -> Result<Arc<wgpu::Buffer>> {
        // Every element is written (padding as zeros where lengths are given).
        let dst = self.gpu.scratch("sequence", steps * batch * features)?;
        kernels.sequence.encode(
            &self.gpu,
            pass,
            &SequenceCopy {
                steps,
                batch,
                features,
                src,
                src_offset,
                src_batch_first,
                dst: &dst,
                dst_batch_first,
                lengths,
                dropout,
            },
        )?;
        Ok(dst)
    }

    /// Identifies this model: the address of its parameter buffer.
    fn id(&self) -> usize {
        Arc::as_ptr(self.arena.params_buffer()) as usize
    }

    fn offsets(&self, layer: usize, direction: usize) -> Result<Offsets> {
        let n = ParamNames::new(layer, direction);
        let at = |name: &str| self.arena.view(name).map(|v| v.offset);
        Ok(Offsets {
            w_ih: at(&n.weight_ih)?,
            w_hh: at(&n.weight_hh)?,
            bias: if self.config.bias {
                Some((at(&n.bias_ih)?, at(&n.bias_hh)?))
            } else {
                None
            },
        })
    }

    /// Checks a sequence tensor `[T, B, F]` (`[B, T, F]` batch-first) and returns (T, B).
    fn sequence_dims(&self, x: &Tensor, name: &str, features: usize) -> Result<(usize, usize)> {
        self.same_device(x, name)?;
        let shape = x.shape();
        let layout = if self.config.batch_first {
            "[B, T, "
        } else {
            "[T, B, "
        };
        if shape.len() != 3 || shape[2] != features || shape.contains(&0) {
            return Err(Error::Shape {
                tensor: name.into(),
                expected: format!("{layout}{features}] with T, B ≥ 1"),
                given: fmt_shape(shape),
            });
        }
        Ok(if self.config.batch_first {
            (shape[1], shape[0])
        } else {
            (shape[0], shape[1])
        })
    }

    fn same_device(&self, t: &Tensor, name: &str) -> Result<()> {
        if !t.gpu().same(&self.gpu) {
            return Err(Error::Invalid(format!(
                "tensor `{name}` lives on another Gpu context than the model"
            )));
        }
        Ok(())
    }

    /// Checks an optional `[L·D, B, H]` state tensor.
    fn check_state(&self, t: Option<&Tensor>, name: &str, batch: usize) -> Result<()> {
        if let Some(t) = t {
            self.same_device(t, name)?;
            let c = &self.config;
            check_shape(
                name,
                t.shape(),
                &[c.num_layers * c.directions(), batch, c.hidden_size],
            )?;
        }
        Ok(())
    }
}

fn check_lengths(lengths: Option<&[usize]>, steps: usize, batch: usize) -> Result<()> {
    let Some(lengths) = lengths else {
        return Ok(());
    };
    if lengths.len() != batch {
        return Err(Error::Shape {
            tensor: "lengths".into(),
            expected: format!("[{batch}]"),
            given: format!("[{}]", lengths.len()),
        });
    }
    if let Some((b, &len)) = lengths
        .iter()
        .enumerate()
        .find(|(_, &l)| l == 0 || l > steps)
    {
        return Err(Error::Invalid(format!(
            "lengths[{b}] = {len}: every length must be in 1..={steps} (T)"
        )));
    }
    Ok(())
}

/// The dropout seed of layer `layer`'s input in training call `call`.
fn dropout_seed_for(seed: u64, call: u64, layer: usize) -> u32 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        seed ^ call.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ layer as u64,
    );
    rng.random()
}
