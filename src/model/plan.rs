//! The geometry of one call, computed once: for every layer and direction, where its
//! parameters, states and activations live, and the constants of its step dispatches. The
//! forward pass, the backward pass and the weight gradients all read it.

use super::arena::ParamArena;
use super::config::{LstmConfig, ParamNames};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::step::sequence::{self, Shape};
use crate::kernels::step::{flags, BackwardDims, ForwardDims, Pointwise, Product};
use crate::kernels::Recurrence;
use crate::kernels::{Cell, Nonlinearity};

/// One layer and direction.
pub(crate) struct Part {
    pub layer: usize,
    pub dir: usize,
    /// Features of the layer's input: I, or D·R above the first layer.
    pub in_size: usize,
    /// Element offsets in the parameter arena.
    pub w_ih: usize,
    pub w_hh: usize,
    pub w_hr: Option<usize>,
    pub bias: Option<(usize, usize)>,
}

impl Part {
    /// Index among the initial and final states, `[L·D, ..]`.
    pub fn state_index(&self, dirs: usize) -> usize {
        self.layer * dirs + self.dir
    }

    pub fn reverse(&self) -> bool {
        self.dir == 1
    }
}

/// The geometry of one call with `steps` × `batch` rows.
pub(crate) struct Plan {
    pub cell: Cell,
    pub steps: usize,
    pub batch: usize,
    /// H: hidden units (the cell state's width).
    pub hidden: usize,
    /// R: the width of h (P with projections, else H).
    pub out: usize,
    /// P, or 0.
    pub proj: usize,
    pub dirs: usize,
    pub layers: usize,
    pub relu: bool,
    /// Layer by layer, direction by direction.
    pub parts: Vec<Part>,
}

impl Plan {
    pub fn new(
        config: &LstmConfig,
        arena: &ParamArena,
        steps: usize,
        batch: usize,
    ) -> Result<Plan> {
        let mut parts = Vec::with_capacity(config.num_layers * config.directions());
        for layer in 0..config.num_layers {
            for dir in 0..config.directions() {
                let n = ParamNames::new(layer, dir);
                let at = |name: &str| arena.view(name).map(|v| v.offset);
                parts.push(Part {
                    layer,
                    dir,
                    in_size: config.layer_input_size(layer),
                    w_ih: at(&n.weight_ih)?,
                    w_hh: at(&n.weight_hh)?,
                    w_hr: if config.proj_size > 0 {
                        Some(at(&n.weight_hr)?)
                    } else {
                        None
                    },
                    bias: if config.bias {
                        Some((at(&n.bias_ih)?, at(&n.bias_hh)?))
                    } else {
                        None
                    },
                });
            }
        }
        Ok(Plan {
            cell: config.cell,
            steps,
            batch,
            hidden: config.hidden_size,
            out: config.output_size(),
            proj: config.proj_size,
            dirs: config.directions(),
            layers: config.num_layers,
            relu: config.nonlinearity == Nonlinearity::Relu,
            parts,
        })
    }

    /// The parts of layer `l`.
    pub fn layer(&self, l: usize) -> &[Part] {
        &self.parts[l * self.dirs..(l + 1) * self.dirs]
    }

    /// T·B.
    pub fn rows(&self) -> usize {
        self.steps * self.batch
    }

    /// Gate rows per step: G·H.
    pub fn gate_rows(&self) -> usize {
        self.cell.gates() * self.hidden
    }

    /// Elements of all initial (or final) h, `[L·D, B, R]`, and c, `[L·D, B, H]`.
    pub fn h_states(&self) -> usize {
        self.layers * self.dirs * self.batch * self.out
    }

    pub fn c_states(&self) -> usize {
        self.layers * self.dirs * self.batch * self.hidden
    }

    /// The forward state buffer: h0, c0, h_n, c_n of every layer and direction, in that order.
    pub fn state_len(&self) -> usize {
        2 * (self.h_states() + self.c_states())
    }

    /// Element offsets in the forward state buffer.
    pub fn h0_at(&self, p: &Part) -> usize {
        p.state_index(self.dirs) * self.batch * self.out
    }

    pub fn c0_at(&self, p: &Part) -> usize {
        self.h_states() + p.state_index(self.dirs) * self.batch * self.hidden
    }

    pub fn h_n_at(&self, p: &Part) -> usize {
        self.h_states() + self.c_states() + self.h0_at(p)
    }

    pub fn c_n_at(&self, p: &Part) -> usize {
        self.h_states() + self.c_states() + self.c0_at(p)
    }

    /// A layer's h history: `[T, B, D·R]` (its output), then with projections each
    /// direction's unprojected `o ⊙ tanh(c)`, `[D, T, B, H]`.
    pub fn hs_len(&self) -> usize {
        self.rows() * self.dirs * (self.out + if self.proj > 0 { self.hidden } else { 0 })
    }

    /// Where direction `d`'s unprojected h starts in the history.
    pub fn hu_at(&self, d: usize) -> usize {
        self.rows() * (self.dirs * self.out + d * self.hidden)
    }

    /// Cell-state slots of a layer: T when training, 2 (a ring) for inference.
    pub fn cs_slots(&self, train: bool) -> usize {
        if train {
            self.steps
        } else {
            2
        }
    }

    /// A layer's cell states, `[slots, B, D·H]` (1 element for cells without).
    pub fn cs_len(&self, train: bool) -> usize {
        if self.cell.has_cell_state() {
            self.cs_slots(train) * self.batch * self.dirs * self.hidden
        } else {
            1
        }
    }

    /// What a direction keeps for backward, `[T, B, kept·H]`.
    pub fn kept_len(&self) -> usize {
        self.rows() * self.cell.kept() * self.hidden
    }

    /// A direction's gate gradients: the recurrent side `[T, B, G·H]`; the input side, where it
    /// differs (GRU), `[T, B, G·H]`; with projections the gradient of the projected h,
    /// `[T, B, P]`.
    pub fn dgates_len(&self) -> usize {
        self.dproj_at() + self.rows() * self.proj
    }

    /// Where the gradients of the input-side pre-activations start in the gate gradients.
    pub fn dinput_at(&self) -> usize {
        if self.cell.separate_input_grads() {
            self.rows() * self.gate_rows()
        } else {
            0
        }
    }

    /// Where the gradient of the projected h starts in the gate gradients.
    pub fn dproj_at(&self) -> usize {
        let sides = if self.cell.separate_input_grads() {
            2
        } else {
            1
        };
        sides * self.rows() * self.gate_rows()
    }

    /// The backward state of one part: 6 slots of `[B, H]` (see `step_backward.wgsl`).
    pub fn slot_len(&self) -> usize {
        self.batch * self.hidden
    }

    fn common_flags(&self, p: &Part, lengths: bool) -> u32 {
        let mut f = 0;
        if p.reverse() {
            f |= flags::REVERSE;
        }
        if lengths {
            f |= flags::LENGTHS;
        }
        if self.relu {
            f |= flags::RELU;
        }
        f
    }

    /// A recurrent product of `units` outputs over `k_size`, with W at `w_offset`, reading
    /// `(base, stride)` rows of its source and writing those of its destination.
    fn product(
        &self,
        flags: u32,
        (units, k_size, w_offset): (usize, usize, usize),
        (src_base, src_stride): (usize, usize),
        (dst_base, dst_stride): (usize, usize),
        gates: usize,
    ) -> Product {
        let u = |v: usize| v as u32;
        Product {
            gates: u(gates),
            batch: u(self.batch),
            steps: u(self.steps),
            flags,
            units: u(units),
            k_size: u(k_size),
            w_offset: u(w_offset),
            src_base: u(src_base),
            src_stride: u(src_stride),
            dst_base: u(dst_base),
            dst_stride: u(dst_stride),
            _pad: 0,
        }
    }

    /// How this call records its recurrences (the same for every layer and direction: their
    /// recurrent products have the same sizes): the device's setting, auto resolved for the
    /// sizes of the products forward and backward.
    pub fn recurrence(&self, gpu: &Gpu) -> Result<Recurrence> {
        let [forward, backward] = self.sequence_shapes();
        sequence::choose(gpu, [&forward, &backward])
    }

    /// The sequence kernels of a layer and direction, forward and backward.
    fn sequence_shapes(&self) -> [Shape; 2] {
        let part = &self.parts[0];
        [
            Shape::forward(&self.forward_dims(part, false, false)),
            Shape::backward(&self.backward_dims(part, false, false, (0, 0))),
        ]
    }

    /// The recurrence this call takes and the dispatches one layer and direction's recurrence
    /// records forward and backward (dh_0 included) with it.
    pub fn recurrence_dispatches(&self, gpu: &Gpu) -> Result<(Recurrence, usize, usize)> {
        let recurrence = self.recurrence(gpu)?;
        if recurrence == Recurrence::Step {
            let per_step = if self.proj > 0 { 2 } else { 1 };
            return Ok((recurrence, per_step * self.steps, per_step * self.steps + 1));
        }
        let [forward, backward] = self.sequence_shapes();
        let chunks = |shape: &Shape| -> Result<usize> {
            Ok(self.steps.div_ceil(shape.steps_per_dispatch()?))
        };
        Ok((recurrence, chunks(&forward)?, chunks(&backward)?))
    }

    /// The forward dispatches of part `p` at every step: the cell's, then the projection's.
    pub fn forward_dims(
        &self,
        p: &Part,
        train: bool,
        lengths: bool,
    ) -> Vec<(Pointwise, ForwardDims)> {
        let (h, r, d) = (self.hidden, self.out, p.dir);
        let g = self.cell.gates();
        let mut flags = self.common_flags(p, lengths);
        if train {
            flags |= flags::STORE_GATES;
        }
        if p.bias.is_some() {
            flags |= flags::BIAS;
        }
        let output = (d * r, self.dirs * r);
        let mut cell = ForwardDims {
            product: self.product(flags, (h, r, p.w_hh), output, output, g),
            h_init: self.h0_at(p) as u32,
            h_last: self.h_n_at(p) as u32,
            c_init: self.c0_at(p) as u32,
            c_last: self.c_n_at(p) as u32,
            cs_base: (d * h) as u32,
            cs_stride: (self.dirs * h) as u32,
            cs_slots: self.cs_slots(train) as u32,
            kept_stride: (self.cell.kept() * h) as u32,
            bias_hh: p.bias.map_or(0, |(_, b_hh)| b_hh) as u32,
            _pad: [0; 3],
        };
        let Some(w_hr) = p.w_hr else {
            return vec![(Pointwise::Cell(self.cell), cell)];
        };
        // The cell writes o ⊙ tanh(c) to its own region; the projection reads it at the same
        // step and writes the projected h (the layer's output) and h_n.
        let unprojected = (self.hu_at(d), h);
        cell.product = self.product(
            flags | flags::PROJECTED,
            (h, r, p.w_hh),
            output,
            unprojected,
            g,
        );
        let flags = self.common_flags(p, lengths) | flags::SOURCE_CURRENT;
        let projection = ForwardDims {
            product: self.product(flags, (r, h, w_hr), unprojected, output, 1),
            kept_stride: 0,
            ..cell
        };
        vec![
            (Pointwise::Cell(self.cell), cell),
            (Pointwise::Projection, projection),
        ]
    }

    /// The backward dispatches of part `p` at every step (the projection's, then the cell's),
    /// the gradient of the layer's output being `dy` from element `dy_base` with row stride
    /// `dy_stride`.
    pub fn backward_dims(
        &self,
        p: &Part,
        lengths: bool,
        probe: bool,
        (dy_base, dy_stride): (usize, usize),
    ) -> Vec<(Pointwise, BackwardDims)> {
        let (h, r, d) = (self.hidden, self.out, p.dir);
        let g = self.cell.gates();
        let gate_rows = self.gate_rows();
        let mut flags = self.common_flags(p, lengths);
        if probe {
            flags |= flags::PROBE;
        }
        // The LSTM's backward reads its c, the others their h.
        let (saved_base, saved_stride) = if self.cell.has_cell_state() {
            (d * h, self.dirs * h)
        } else {
            (d * r, self.dirs * r)
        };
        let gates = (0, gate_rows);
        let cell = BackwardDims {
            product: self.product(flags, (h, gate_rows, p.w_hh), gates, gates, g),
            dst2_base: self.dinput_at() as u32,
            dy_base: (dy_base + d * r) as u32,
            dy_stride: dy_stride as u32,
            saved_base: saved_base as u32,
            saved_stride: saved_stride as u32,
            kept_stride: (self.cell.kept() * h) as u32,
            slot_stride: self.slot_len() as u32,
            _pad: [0; 5],
        };
        let Some(w_hr) = p.w_hr else {
            return vec![(Pointwise::Cell(self.cell), cell)];
        };
        // The projection forms the whole gradient of the projected h (dy, dG_next · W_hh and
        // the carry); the cell multiplies it by W_hr at the same step.
        let projected = (self.dproj_at(), r);
        let common = self.common_flags(p, lengths);
        let projection = BackwardDims {
            product: self.product(common, (r, gate_rows, p.w_hh), gates, projected, 1),
            ..cell
        };
        let flags = flags | flags::SOURCE_CURRENT;
        let cell = BackwardDims {
            product: self.product(flags, (h, r, w_hr), projected, gates, g),
            ..cell
        };
        vec![
            (Pointwise::Projection, projection),
            (Pointwise::Cell(self.cell), cell),
        ]
    }
}
