//! The forward pass: per layer and direction, the input projection of all T·B rows as one
//! GEMM, then the step dispatches of the sequence; one encoder, one submit.

use super::lstm::{check_lengths, dropout_seed_for, Lstm};
use super::outputs::{ForwardCache, ForwardOptions, LayerCache, LstmOutput};
use super::plan::{Part, Plan};
use crate::error::Result;
use crate::gpu::{Gpu, Tensor};
use crate::kernels::gemm::{self, Gemm, Operand};
use crate::kernels::step::{self, ForwardBuffers};
use crate::kernels::Recurrence;
use std::sync::atomic::Ordering;

/// The buffers one call shares between its layers.
struct Shared<'a> {
    state: &'a wgpu::Buffer,
    lengths: &'a wgpu::Buffer,
    has_lengths: bool,
    xproj: &'a wgpu::Buffer,
}

impl Lstm {
    pub(super) fn run_impl(&self, x: &Tensor, opts: &ForwardOptions<'_>) -> Result<LstmOutput> {
        let (steps, batch) = self.sequence_dims(x, "x", self.config.input_size)?;
        let plan = Plan::new(&self.config, &self.arena, steps, batch)?;
        self.check_state(opts.h0, "h0", batch, plan.out)?;
        if self.config.cell.has_cell_state() {
            self.check_state(opts.c0, "c0", batch, plan.hidden)?;
        }
        check_lengths(opts.lengths, steps, batch)?;
        let cfg = self.config;
        let train = opts.train;
        let call = if train {
            self.dropout_calls.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        let gpu = &self.gpu;
        gpu.scoped(|| {
            // Activations come from the device's scratch pool (reused when a call repeats the
            // sizes of one whose results were dropped); each is overwritten or cleared below.
            let state = gpu.scratch("states [h0, c0, h_n, c_n]", plan.state_len())?;
            let lengths = match opts.lengths {
                Some(l) => {
                    let l: Vec<u32> = l.iter().map(|&v| v as u32).collect();
                    Some(gpu.scratch_init("lengths", &l)?)
                }
                None => None,
            };
            let no_lengths = gpu.scratch("no lengths (unread)", 1)?;
            let xproj = gpu.scratch(
                "input projection [T, B, G·H]",
                plan.rows() * plan.gate_rows(),
            )?;
            let shared = Shared {
                state: &state,
                lengths: lengths.as_deref().unwrap_or(&no_lengths),
                has_lengths: lengths.is_some(),
                xproj: &xproj,
            };

            let mut encoder = gpu.encoder("recurrent forward");
            self.encode_initial_states(&mut encoder, &plan, &state, opts);
            // Training keeps its own copy of x: the caller may reuse its buffer before backward.
            let x_copy = if train && !cfg.batch_first {
                let copy = gpu.scratch("x kept for backward", x.len())?;
                encoder.copy_buffer_to_buffer(x.buffer(), x.byte_offset(), &copy, 0, x.byte_len());
                Some(copy)
            } else {
                None
            };
            let mut caches = Vec::with_capacity(plan.layers);
            let y;
            {
                let mut pass = gpu.compute_pass(&mut encoder, "layout");
                // The time-major input of layer 0.
                let (mut input, mut input_offset) = if cfg.batch_first {
                    let t = self.sequence_copy(
                        &mut pass,
                        (x.buffer(), x.offset()),
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
                for l in 0..plan.layers {
                    let in_size = cfg.layer_input_size(l);
                    let mut dropout_seed = None;
                    if l > 0 && train && cfg.dropout > 0.0 {
                        drop(pass);
                        pass = gpu.compute_pass(&mut encoder, "layout");
                        let seed = dropout_seed_for(cfg.seed, call, l);
                        input = self.sequence_copy(
                            &mut pass,
                            (&input, input_offset),
                            [steps, batch, in_size],
                            (false, false),
                            None,
                            Some((cfg.dropout, seed)),
                        )?;
                        input_offset = 0;
                        dropout_seed = Some(seed);
                    }
                    let hs = gpu.scratch("hidden states", plan.hs_len())?;
                    let cs = gpu.scratch("cell states", plan.cs_len(train))?;
                    let mut gates = Vec::with_capacity(plan.dirs);
                    for part in plan.layer(l) {
                        // Steps past a sequence's length leave their gates unwritten; the
                        // backward pass does not read them.
                        let kept = if train && plan.cell.kept() > 0 {
                            gpu.scratch("kept gates [T, B, kept·H]", plan.kept_len())?
                        } else {
                            gpu.scratch("unused gates", 1)?
                        };
                        drop(pass);
                        pass = gpu.compute_pass(&mut encoder, "projection");
                        self.encode_projection(
                            &mut pass,
                            &plan,
                            part,
                            (&input, input_offset),
                            &shared,
                        )?;
                        drop(pass);
                        pass = gpu.compute_pass(&mut encoder, "recurrence");
                        let buffers = ForwardBuffers {
                            params: self.arena.params_buffer(),
                            xproj: shared.xproj,
                            lengths: shared.lengths,
                            state: shared.state,
                            hs: &hs,
                            cs: &cs,
                            gates: &kept,
                        };
                        self.encode_recurrence(
                            gpu, &mut pass, &plan, part, train, &shared, &buffers,
                        )?;
                        gates.push(kept);
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
                let width = plan.dirs * plan.out;
                let y_shape = if cfg.batch_first {
                    [batch, steps, width]
                } else {
                    [steps, batch, width]
                };
                y = if lengths.is_some() || cfg.batch_first {
                    let out = self.sequence_copy(
                        &mut pass,
                        (&input, 0),
                        [steps, batch, width],
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
            let n = plan.layers * plan.dirs;
            let (h_n, c_n) = (
                plan.h_states() + plan.c_states(),
                2 * plan.h_states() + plan.c_states(),
            );
            Ok(LstmOutput {
                y,
                h_n: Tensor::view(gpu, state.clone(), h_n, &[n, batch, plan.out]),
                c_n: Tensor::view(gpu, state.clone(), c_n, &[n, batch, plan.hidden]),
                cache: train.then(|| ForwardCache {
                    model: self.id,
                    config: cfg,
                    steps,
                    batch,
                    layers: caches,
                    state,
                    lengths,
                }),
            })
        })
    }

    /// Copies h0 and c0 into the state buffer (zeros where absent); a cell without a cell state
    /// gets zero c0 and c_n.
    fn encode_initial_states(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        plan: &Plan,
        state: &wgpu::Buffer,
        opts: &ForwardOptions<'_>,
    ) {
        let bytes = |n: usize| (n * 4) as u64;
        let c0 = if plan.cell.has_cell_state() {
            opts.c0
        } else {
            None
        };
        let regions = [
            (opts.h0, 0, plan.h_states()),
            (c0, plan.h_states(), plan.c_states()),
        ];
        for (given, at, len) in regions {
            match given {
                Some(s) => encoder.copy_buffer_to_buffer(
                    s.buffer(),
                    s.byte_offset(),
                    state,
                    bytes(at),
                    s.byte_len(),
                ),
                None => encoder.clear_buffer(state, bytes(at), Some(bytes(len))),
            }
        }
        if !plan.cell.has_cell_state() {
            let c_n = plan.h_states() * 2 + plan.c_states();
            encoder.clear_buffer(state, bytes(c_n), Some(bytes(plan.c_states())));
        }
    }

    /// `xproj = input · W_ihᵀ + b_ih + b_hh` for all T·B rows of part `p`.
    fn encode_projection(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        plan: &Plan,
        p: &Part,
        (input, input_offset): (&wgpu::Buffer, usize),
        shared: &Shared<'_>,
    ) -> Result<()> {
        let params = self.arena.params_buffer();
        let x = Operand::new(input, input_offset, p.in_size);
        let w_ih = Operand::new(params, p.w_ih, p.in_size).t();
        let size = (plan.rows(), plan.gate_rows(), p.in_size);
        // b_ih, and b_hh too where the cell lets the projection fold it in.
        let (b_ih, b_hh) = p.bias.unwrap_or_default();
        let product = Gemm::new(size, x, w_ih, (shared.xproj, 0));
        let product = match p.bias {
            Some(_) => product.bias(
                params,
                b_ih,
                plan.cell.folds_recurrent_bias().then_some(b_hh),
            ),
            None => product,
        };
        gemm::encode(&self.gpu, pass, &product)
    }

    /// The step dispatches of part `p` over the whole sequence, in processing order.
    #[allow(clippy::too_many_arguments)]
    fn encode_recurrence(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        plan: &Plan,
        p: &Part,
        train: bool,
        shared: &Shared<'_>,
        buffers: &ForwardBuffers<'_>,
    ) -> Result<()> {
        let dims = plan.forward_dims(p, train, shared.has_lengths);
        if plan.recurrence(gpu)? == Recurrence::Sequence {
            return step::sequence::forward(gpu, pass, &dims, buffers);
        }
        let dispatches = dims
            .iter()
            .map(|(pointwise, dims)| step::forward(gpu, *pointwise, dims, buffers))
            .collect::<Result<Vec<_>>>()?;
        let steps = plan.steps;
        let reverse = p.reverse();
        let order = (0..steps).map(|s| (if reverse { steps - 1 - s } else { s }, 0));
        step::encode_steps(gpu, pass, &dispatches, steps, order)
    }
}
