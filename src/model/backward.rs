//! Backpropagation through time: per layer and direction (top layer first), the step
//! dispatches in the reverse of the forward order, then the weight gradients as GEMMs over all
//! T·B rows and the bias gradients as a column sum; one encoder, one submit.

use super::lstm::Lstm;
use super::outputs::{BackwardOutput, ForwardCache, LayerCache, OutputGrads};
use super::plan::{Part, Plan};
use crate::error::{Error, Result};
use crate::gpu::{check_shape, Tensor};
use crate::kernels::column_sum;
use crate::kernels::gemm::{self, Gemm, Operand};
use crate::kernels::step::{self, flags, BackwardBuffers, BackwardDims, Pointwise};
use crate::kernels::Recurrence;
use std::sync::Arc;

/// Slots of the backward state (see `step_backward.wgsl`).
const STATE_SLOTS: usize = 6;
const DH_CARRY: usize = 0;
const DC_CARRY: usize = 1;
const DH0: usize = 2;
const INIT: usize = 3;

impl Lstm {
    pub(super) fn backward_impl(
        &self,
        cache: &ForwardCache,
        grads: &OutputGrads<'_>,
        accumulate: bool,
        probes: Option<&wgpu::Buffer>,
    ) -> Result<BackwardOutput> {
        let cfg = self.config;
        let (steps, batch) = (cache.steps, cache.batch);
        if cache.model != self.id || cache.config != cfg {
            return Err(Error::Invalid(
                "the forward cache comes from another model (or the model's configuration changed)"
                    .into(),
            ));
        }
        let plan = Plan::new(&cfg, &self.arena, steps, batch)?;
        let width = plan.dirs * plan.out;
        let y_shape: [usize; 3] = if cfg.batch_first {
            [batch, steps, width]
        } else {
            [steps, batch, width]
        };
        if let Some(dy) = grads.dy {
            self.same_device(dy, "dy")?;
            check_shape("dy", dy.shape(), &y_shape)?;
        }
        self.check_state(grads.dh_n, "dh_n", batch, plan.out)?;
        if cfg.cell.has_cell_state() {
            self.check_state(grads.dc_n, "dc_n", batch, plan.hidden)?;
        }
        let gpu = &self.gpu;
        gpu.scoped(|| {
            let no_lengths = gpu.scratch("no lengths (unread)", 1)?;
            let lengths = cache.lengths.as_deref().unwrap_or(&no_lengths);
            // Scratch buffers as in the forward pass: the step kernels write every gate
            // gradient; the states are cleared below.
            let dgates: Vec<Arc<wgpu::Buffer>> = (0..plan.dirs)
                .map(|_| gpu.scratch("gate gradients", plan.dgates_len()))
                .collect::<Result<_>>()?;
            let states: Vec<Arc<wgpu::Buffer>> = (0..plan.parts.len())
                .map(|_| gpu.scratch("backward state", STATE_SLOTS * plan.slot_len()))
                .collect::<Result<_>>()?;
            let no_probes = gpu.scratch("no probes", 1)?;
            let dh0 = gpu.scratch("dh0 [L·D, B, R]", plan.h_states())?;
            let dc0 = gpu.scratch("dc0 [L·D, B, H]", plan.c_states())?;

            let mut encoder = gpu.encoder("recurrent backward");
            self.encode_backward_states(&mut encoder, &plan, cache, grads, &states);
            // The top layer's output gradient: the caller's, or zeros.
            let (dy_buffer, dy_start) = match grads.dy {
                Some(g) => (g.buffer().clone(), g.offset()),
                None => {
                    let zeros = gpu.scratch("zero dy", plan.rows() * width)?;
                    encoder.clear_buffer(&zeros, 0, None);
                    (zeros, 0)
                }
            };
            let dx;
            {
                let mut pass = gpu.compute_pass(&mut encoder, "layout");
                // The time-major gradient of the top layer's output.
                let (mut dy, mut dy_offset) = if grads.dy.is_some() && cfg.batch_first {
                    let t = self.sequence_copy(
                        &mut pass,
                        (&dy_buffer, dy_start),
                        [steps, batch, width],
                        (true, false),
                        None,
                        None,
                    )?;
                    (t, 0)
                } else {
                    (dy_buffer, dy_start)
                };
                let mut dx_layer = None;
                for l in (0..plan.layers).rev() {
                    let lc = &cache.layers[l];
                    let in_size = cfg.layer_input_size(l);
                    let dx_l = gpu.scratch("input gradient [T, B, in]", plan.rows() * in_size)?;
                    for (part, dg) in plan.layer(l).iter().zip(&dgates) {
                        let probe_here = probes.is_some() && l == plan.layers - 1 && part.dir == 0;
                        let buffers = BackwardBuffers {
                            params: self.arena.params_buffer(),
                            gates: &lc.gates[part.dir],
                            // The LSTM reads its cell states, the other cells their outputs.
                            saved: if cfg.cell.has_cell_state() {
                                &lc.cs
                            } else {
                                &lc.hs
                            },
                            dy: &dy,
                            lengths,
                            dgates: dg,
                            state: &states[part.state_index(plan.dirs)],
                            probes: probes.filter(|_| probe_here).unwrap_or(&no_probes),
                        };
                        drop(pass);
                        pass = gpu.compute_pass(&mut encoder, "recurrence backward");
                        let dims = plan.backward_dims(
                            part,
                            cache.lengths.is_some(),
                            probe_here,
                            (dy_offset, width),
                        );
                        self.encode_backward_recurrence(&mut pass, &plan, part, &dims, &buffers)?;
                        drop(pass);
                        pass = gpu.compute_pass(&mut encoder, "weight and input gradients");
                        self.encode_weight_grads(
                            &mut pass, &plan, cache, lc, part, dg, accumulate,
                        )?;
                        self.encode_input_grad(&mut pass, &plan, part, dg, &dx_l)?;
                    }
                    drop(pass);
                    pass = gpu.compute_pass(&mut encoder, "layout");
                    if l > 0 {
                        // The gradient of the layer below's output: through dropout if applied.
                        dy = match lc.dropout_seed {
                            Some(seed) => self.sequence_copy(
                                &mut pass,
                                (&dx_l, 0),
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
                let dx_buffer = if cfg.batch_first {
                    self.sequence_copy(
                        &mut pass,
                        (&dx_l, 0),
                        [steps, batch, cfg.input_size],
                        (false, true),
                        None,
                        None,
                    )?
                } else {
                    dx_l
                };
                dx = Tensor::view(gpu, dx_buffer, 0, &x_shape);
            }
            // dh0 from slot 2, dc0 from the dc carry.
            let (rb, hb) = (plan.batch * plan.out * 4, plan.batch * plan.hidden * 4);
            let slot = |s: usize| (s * plan.slot_len() * 4) as u64;
            for (i, state) in states.iter().enumerate() {
                encoder.copy_buffer_to_buffer(state, slot(DH0), &dh0, (i * rb) as u64, rb as u64);
                encoder.copy_buffer_to_buffer(
                    state,
                    slot(DC_CARRY),
                    &dc0,
                    (i * hb) as u64,
                    hb as u64,
                );
            }
            gpu.submit(encoder)?;
            let n = plan.layers * plan.dirs;
            Ok(BackwardOutput {
                dx,
                dh0: Tensor::view(gpu, dh0, 0, &[n, batch, plan.out]),
                dc0: Tensor::view(gpu, dc0, 0, &[n, batch, plan.hidden]),
            })
        })
    }

    /// The backward recurrence of part `p`: its steps in the reverse of the forward order,
    /// then dh_0, as step dispatches or with the sequence kernel.
    fn encode_backward_recurrence(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        plan: &Plan,
        part: &Part,
        dims: &[(Pointwise, BackwardDims)],
        buffers: &BackwardBuffers<'_>,
    ) -> Result<()> {
        let gpu = &self.gpu;
        if plan.recurrence(gpu)? == Recurrence::Sequence {
            return step::sequence::backward(gpu, pass, dims, buffers);
        }
        let dispatches = dims
            .iter()
            .map(|(pointwise, d)| step::backward(gpu, *pointwise, d, buffers))
            .collect::<Result<Vec<_>>>()?;
        let (steps, reverse) = (plan.steps, part.reverse());
        let order = (0..steps)
            .map(|s| (if reverse { s } else { steps - 1 - s }, 0))
            .chain(std::iter::once((0, flags::H0_MODE)));
        step::encode_steps(gpu, pass, &dispatches, steps, order)
    }

    /// Clears the backward states and sets their carries from dh_n and dc_n, and the initial
    /// state the cell reads (c0 for the LSTM).
    fn encode_backward_states(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        plan: &Plan,
        cache: &ForwardCache,
        grads: &OutputGrads<'_>,
        states: &[Arc<wgpu::Buffer>],
    ) {
        let slot = |s: usize| (s * plan.slot_len() * 4) as u64;
        let (rb, hb) = (plan.batch * plan.out * 4, plan.batch * plan.hidden * 4);
        let has_c = plan.cell.has_cell_state();
        for (i, (part, state)) in plan.parts.iter().zip(states).enumerate() {
            // Carries and probe products start at zero unless set below.
            encoder.clear_buffer(state, 0, None);
            // The initial state the cell's backward reads at its first step.
            if has_c {
                let c0 = (plan.c0_at(part) * 4) as u64;
                encoder.copy_buffer_to_buffer(&cache.state, c0, state, slot(INIT), hb as u64);
            } else if plan.cell.backward_reads_h0() {
                let h0 = (plan.h0_at(part) * 4) as u64;
                encoder.copy_buffer_to_buffer(&cache.state, h0, state, slot(INIT), rb as u64);
            }
            if let Some(dh_n) = grads.dh_n {
                let from = dh_n.byte_offset() + (i * rb) as u64;
                encoder.copy_buffer_to_buffer(
                    dh_n.buffer(),
                    from,
                    state,
                    slot(DH_CARRY),
                    rb as u64,
                );
            }
            if let Some(dc_n) = grads.dc_n.filter(|_| has_c) {
                let from = dc_n.byte_offset() + (i * hb) as u64;
                encoder.copy_buffer_to_buffer(
                    dc_n.buffer(),
                    from,
                    state,
                    slot(DC_CARRY),
                    hb as u64,
                );
            }
        }
    }

    /// Records `dW_ih`, `dW_hh`, `dW_hr` and the bias gradients of part `p` from its gate
    /// gradients `dg`.
    #[allow(clippy::too_many_arguments)]
    fn encode_weight_grads(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        plan: &Plan,
        cache: &ForwardCache,
        lc: &LayerCache,
        p: &Part,
        dg: &wgpu::Buffer,
        accumulate: bool,
    ) -> Result<()> {
        let (steps, batch) = (plan.steps, plan.batch);
        let (rows, gate_rows, r) = (plan.rows(), plan.gate_rows(), plan.out);
        let grads = self.arena.grads_buffer();
        let gpu = &self.gpu;
        // Gradient `offset` of the arena (+)= aᵀ · b over `k` rows, a being rows of dG.
        let weight_grad =
            |pass: &mut wgpu::ComputePass<'_>, (m, n, k), a: Operand, b, offset, add| {
                gemm::encode(
                    gpu,
                    pass,
                    &Gemm::new((m, n, k), a.t(), b, (grads, offset)).accumulate(add),
                )
            };
        // dG rows from `row` on: the recurrent side (or the input side, from `dinput_at`).
        let dg_rows = |side: usize, row: usize| Operand::new(dg, side + row * gate_rows, gate_rows);
        // dW_ih = dGᵀ · input
        let input = Operand::new(&lc.input, lc.input_offset, p.in_size);
        let d_input = dg_rows(plan.dinput_at(), 0);
        weight_grad(
            pass,
            (gate_rows, p.in_size, rows),
            d_input,
            input,
            p.w_ih,
            accumulate,
        )?;
        // dW_hh = Σ_t dG_tᵀ · h_prev(t): the steps that read a previous step's h (one GEMM over
        // (T-1)·B rows of hs), plus the step that read the initial state (B rows).
        let (first_row, prev_row) = if p.reverse() { (0, batch) } else { (batch, 0) };
        let previous = Operand::new(&lc.hs, prev_row * plan.dirs * r + p.dir * r, plan.dirs * r);
        let after_first = dg_rows(0, first_row);
        weight_grad(
            pass,
            (gate_rows, r, rows - batch),
            after_first,
            previous,
            p.w_hh,
            accumulate,
        )?;
        let init_step = if p.reverse() { steps - 1 } else { 0 };
        let h0 = Operand::new(&cache.state, plan.h0_at(p), r);
        weight_grad(
            pass,
            (gate_rows, r, batch),
            dg_rows(0, init_step * batch),
            h0,
            p.w_hh,
            true,
        )?;
        // dW_hr = Σ_t dh_tᵀ · (o_t ⊙ tanh(c_t)), the projection's gradient and input.
        if let Some(w_hr) = p.w_hr {
            let dproj = Operand::new(dg, plan.dproj_at(), r);
            let unprojected = Operand::new(&lc.hs, plan.hu_at(p.dir), plan.hidden);
            weight_grad(
                pass,
                (r, plan.hidden, rows),
                dproj,
                unprojected,
                w_hr,
                accumulate,
            )?;
        }
        if let Some((b_ih, b_hh)) = p.bias {
            let sum = |pass: &mut wgpu::ComputePass<'_>, side: usize, outs: (usize, usize)| {
                column_sum::encode(
                    gpu,
                    pass,
                    (dg, side),
                    (rows, gate_rows),
                    grads,
                    outs,
                    accumulate,
                )
            };
            if plan.dinput_at() == 0 {
                // One sum serves both biases: the two sides' gradients are the same.
                sum(pass, 0, (b_ih, b_hh))?;
            } else {
                sum(pass, 0, (b_hh, b_hh))?;
                sum(pass, plan.dinput_at(), (b_ih, b_ih))?;
            }
        }
        Ok(())
    }

    /// The layer's input gradient: Σ over directions of dG · W_ih, into `dx`.
    fn encode_input_grad(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        plan: &Plan,
        p: &Part,
        dg: &wgpu::Buffer,
        dx: &wgpu::Buffer,
    ) -> Result<()> {
        let gate_rows = plan.gate_rows();
        let d_input = Operand::new(dg, plan.dinput_at(), gate_rows);
        let w_ih = Operand::new(self.arena.params_buffer(), p.w_ih, p.in_size);
        let product = Gemm::new((plan.rows(), p.in_size, gate_rows), d_input, w_ih, (dx, 0));
        gemm::encode(&self.gpu, pass, &product.accumulate(p.dir > 0))
    }
}
