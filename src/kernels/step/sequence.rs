//! The sequence kernels: all the steps of a layer and direction (or of a chunk of them) in one
//! dispatch, for small models whose cost per step is the dispatch rather than the arithmetic;
//! and the choice between them and the step kernels.

use super::generate::sequence_source;
use super::{
    BackwardBuffers, BackwardDims, Direction, ForwardBuffers, ForwardDims, Pointwise, Product,
};
use crate::error::{Error, Result};
use crate::gpu::{lock, Binding, Gpu, Pipeline, PipelineKey};
use crate::kernels::Cell;
use crate::kernels::LOOP_BUDGET;
use std::sync::{Arc, Mutex};

/// How the recurrence of a layer and direction is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum Recurrence {
    /// The sequence kernel where it is the faster (on CPU adapters, see BENCHMARKS.md) and can take
    /// the sizes, else one dispatch per step.
    #[default]
    Auto,
    /// One dispatch (two with projections) per step: the tiled step kernels.
    Step,
    /// One dispatch per layer and direction (per chunk of steps, when a sequence is longer than
    /// an invocation may loop): each workgroup walks one whole sequence.
    Sequence,
}

impl Recurrence {
    /// Parses `auto`, `step` or `sequence` (the `WGPU_LSTM_RECURRENCE` values).
    pub fn parse(name: &str) -> Option<Recurrence> {
        match name {
            "auto" => Some(Recurrence::Auto),
            "step" => Some(Recurrence::Step),
            "sequence" => Some(Recurrence::Sequence),
            _ => None,
        }
    }

    /// `auto`, `step` or `sequence`.
    pub fn name(self) -> &'static str {
        match self {
            Recurrence::Auto => "auto",
            Recurrence::Step => "step",
            Recurrence::Sequence => "sequence",
        }
    }

    /// Whether `Auto` takes the sequence kernel (where it can take the sizes) on a device of
    /// `device_type`. The rule and its measurements are in BENCHMARKS.md ("choosing the
    /// recurrence").
    pub(crate) fn prefers_sequence(device_type: wgpu::DeviceType) -> bool {
        // On CPU adapters (lavapipe, llvmpipe under GL) it was as fast or faster at every
        // measured size, batch 1 to 64 and H = 16 to 256. On GPUs it is not yet measured, and
        // one workgroup per sequence leaves most of a large device idle: the step kernels.
        device_type == wgpu::DeviceType::Cpu
    }
}

struct RecurrenceSetting(Mutex<std::result::Result<Recurrence, String>>);

impl RecurrenceSetting {
    /// `WGPU_LSTM_RECURRENCE` if set (an invalid value is an error at the first use), else auto.
    fn from_env() -> RecurrenceSetting {
        let setting = match std::env::var("WGPU_LSTM_RECURRENCE") {
            Ok(name) => Recurrence::parse(&name).ok_or(format!(
                "WGPU_LSTM_RECURRENCE={name}: expected auto, step or sequence"
            )),
            Err(_) => Ok(Recurrence::Auto),
        };
        RecurrenceSetting(Mutex::new(setting))
    }
}

impl Gpu {
    /// Chooses how every model on this device records its recurrences (all choices compute
    /// the same results within rounding). The default, [`Recurrence::Auto`], or the
    /// `WGPU_LSTM_RECURRENCE` environment variable (`auto`, `step`, `sequence`) when set.
    pub fn set_recurrence(&self, recurrence: Recurrence) {
        *lock(&self.state(RecurrenceSetting::from_env).0) = Ok(recurrence);
    }

    /// The recurrence setting (auto when `WGPU_LSTM_RECURRENCE` is invalid: the models report
    /// that error).
    pub fn recurrence(&self) -> Recurrence {
        lock(&self.state(RecurrenceSetting::from_env).0)
            .clone()
            .unwrap_or_default()
    }
}

/// Most values of W one invocation keeps in registers: 4 KiB, H = 256 for an LSTM (its
/// forward keeps 4 gates at each of K = H, its backward the 4·H rows of one column).
pub(crate) const REGISTERS: u64 = 1024;

/// Most invocations of a sequence kernel's workgroup.
const MAX_THREADS: u32 = 256;

/// One phase of a sequence kernel: a pointwise part and the sizes of its product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Phase {
    pub pointwise: Pointwise,
    /// Outputs of the product, one per unit.
    pub units: u32,
    /// Length of the product.
    pub k_size: u32,
}

/// What a sequence kernel is generated for: its direction and its phases in the order it runs
/// them. The kernel is specialised to the sizes, so that each invocation's weights live in
/// registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub direction: Direction,
    pub phases: Vec<Phase>,
}

impl Shape {
    /// Invocations per workgroup: one per unit of the widest phase, in whole warps of 32, at
    /// most 256 (each then takes several units).
    pub fn threads(&self) -> u32 {
        let widest = self.phases.iter().map(|p| p.units).max().unwrap_or(1);
        widest.next_multiple_of(32).min(MAX_THREADS)
    }

    /// Values of W each invocation keeps: its units' gates (as vec4s) at every k forward, its
    /// units' columns backward.
    pub fn registers(&self) -> u64 {
        let per_k = if self.direction == Direction::Forward {
            4
        } else {
            1
        };
        let threads = self.threads();
        self.phases
            .iter()
            .map(|p| p.units.div_ceil(threads) as u64 * p.k_size as u64 * per_k)
            .sum()
    }

    /// Loop trips of one step: the walk over time and each phase's staging of its source.
    fn trips_per_step(&self) -> u64 {
        let threads = self.threads() as u64;
        1 + self
            .phases
            .iter()
            .map(|p| (p.k_size as u64).div_ceil(threads))
            .sum::<u64>()
    }

    /// Steps one dispatch may run within the loop budget (the backward's dh_0 phase
    /// included), or an error naming the limit the kernel cannot take these sizes within.
    pub fn steps_per_dispatch(&self) -> Result<usize> {
        let sizes: Vec<(u32, u32)> = self.phases.iter().map(|p| (p.units, p.k_size)).collect();
        if self.registers() > REGISTERS {
            return Err(Error::Limit {
                what: format!(
                    "the {} sequence kernel over (units, K) {sizes:?}",
                    self.direction.name()
                ),
                limit: "values of W per invocation (the sequence kernel keeps them in registers)",
                needed: self.registers(),
                available: REGISTERS,
            });
        }
        let per_step = self.trips_per_step();
        // dh_0 stages one more row: at most a step's trips.
        Ok((LOOP_BUDGET.saturating_sub(per_step + 1) / per_step).max(1) as usize)
    }

    /// The name of the variant in the pipeline cache and in messages.
    pub fn name(&self) -> String {
        let names: Vec<String> = self
            .phases
            .iter()
            .map(|p| format!("{} {}x{}", p.pointwise.name(), p.units, p.k_size))
            .collect();
        names.join(" + ")
    }
}

/// The recurrence a call takes whose layers' recurrences have the sequence kernels `shapes`
/// (forward, backward): the device's setting, `Auto` resolved for these sizes (falling back
/// to steps where the sequence kernel cannot take them). A forced `Sequence` too large for
/// the kernel fails when it is recorded, naming the limit.
pub(crate) fn choose(gpu: &Gpu, shapes: [&Shape; 2]) -> Result<Recurrence> {
    let setting = lock(&gpu.state(RecurrenceSetting::from_env).0)
        .clone()
        .map_err(Error::Invalid)?;
    Ok(match setting {
        Recurrence::Auto => {
            let fits = shapes
                .iter()
                .all(|shape| shape.steps_per_dispatch().is_ok());
            if fits && Recurrence::prefers_sequence(gpu.info().device_type) {
                Recurrence::Sequence
            } else {
                Recurrence::Step
            }
        }
        concrete => concrete,
    })
}

/// The chunk of steps a dispatch runs (see the templates' `Chunk`).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Chunk {
    first: u32,
    count: u32,
    h0: u32,
    _pad: u32,
}

/// A sequence kernel of every phase set at awkward sizes, in both directions (for the naga
/// tests): each cell alone, the LSTM with its projection (proj_size), several units per
/// invocation.
pub(crate) fn example_shapes() -> Vec<Shape> {
    let phase = |pointwise, units, k_size| Phase {
        pointwise,
        units,
        k_size,
    };
    let (lstm, gru, rnn) = (
        Pointwise::Cell(Cell::Lstm),
        Pointwise::Cell(Cell::Gru),
        Pointwise::Cell(Cell::Rnn),
    );
    let shape = |direction, phases| Shape { direction, phases };
    let projection = Pointwise::Projection;
    vec![
        shape(Direction::Forward, vec![phase(lstm, 5, 7)]),
        shape(Direction::Backward, vec![phase(lstm, 7, 20)]),
        shape(Direction::Forward, vec![phase(gru, 13, 3)]),
        shape(Direction::Backward, vec![phase(gru, 3, 39)]),
        shape(Direction::Forward, vec![phase(rnn, 300, 9)]),
        shape(Direction::Backward, vec![phase(rnn, 300, 300)]),
        shape(
            Direction::Forward,
            vec![phase(lstm, 6, 3), phase(projection, 3, 6)],
        ),
        shape(
            Direction::Backward,
            vec![phase(projection, 3, 24), phase(lstm, 6, 3)],
        ),
    ]
}

fn pipeline(gpu: &Gpu, shape: &Shape) -> Result<Arc<Pipeline>> {
    let entry = match shape.direction {
        Direction::Forward => "sequence_forward",
        Direction::Backward => "sequence_backward",
    };
    // The step kernel's bindings, then the chunk.
    let bindings: Vec<Binding> = super::bindings(shape.direction)
        .iter()
        .copied()
        .chain([Binding::Uniform])
        .collect();
    let key = PipelineKey {
        shader: entry,
        entry,
        variant: shape.name(),
    };
    gpu.pipeline(key, &[&bindings], 0, || sequence_source(shape))
}

impl Shape {
    /// The forward kernel of a layer and direction whose step runs `phases`.
    pub fn forward(phases: &[(Pointwise, ForwardDims)]) -> Shape {
        Shape::of(
            Direction::Forward,
            phases.iter().map(|(pw, d)| (*pw, d.product)),
        )
    }

    /// The backward kernel of a layer and direction whose step runs `phases`.
    pub fn backward(phases: &[(Pointwise, BackwardDims)]) -> Shape {
        Shape::of(
            Direction::Backward,
            phases.iter().map(|(pw, d)| (*pw, d.product)),
        )
    }

    fn of(direction: Direction, phases: impl Iterator<Item = (Pointwise, Product)>) -> Shape {
        let phases = phases
            .map(|(pointwise, p)| Phase {
                pointwise,
                units: p.units,
                k_size: p.k_size,
            })
            .collect();
        Shape { direction, phases }
    }
}

/// Records the sequence kernel's dispatches: the steps in chunks that fit the loop budget, one
/// workgroup per sequence, each chunk after the one before (they share the sequence's rows).
fn encode<T: bytemuck::Pod>(
    gpu: &Gpu,
    pass: &mut wgpu::ComputePass<'_>,
    shape: &Shape,
    dims: &[T],
    (steps, batch): (usize, usize),
    buffers: &[&wgpu::Buffer],
) -> Result<()> {
    let per_dispatch = shape.steps_per_dispatch()?;
    let pipeline = pipeline(gpu, shape)?;
    let dims = gpu.uniform_slice("sequence phases", dims)?;
    let grid = gpu.grid_2d("a sequence kernel", batch)?;
    let mut first = 0;
    while first < steps {
        let count = per_dispatch.min(steps - first);
        let last = first + count == steps;
        let chunk = Chunk {
            first: first as u32,
            count: count as u32,
            h0: u32::from(last && shape.direction == Direction::Backward),
            _pad: 0,
        };
        let chunk = gpu.uniform("sequence chunk", &chunk)?;
        let all: Vec<&wgpu::Buffer> = std::iter::once(&dims)
            .chain(buffers.iter().copied())
            .chain(std::iter::once(&chunk))
            .collect();
        let group = gpu.bind_group(&pipeline, 0, &all);
        gpu.launch(pass, &pipeline, &group, grid);
        first += count;
    }
    Ok(())
}

/// Records the forward recurrence of one layer and direction with the sequence kernel.
pub(crate) fn forward(
    gpu: &Gpu,
    pass: &mut wgpu::ComputePass<'_>,
    phases: &[(Pointwise, ForwardDims)],
    b: &ForwardBuffers<'_>,
) -> Result<()> {
    let p = phases[0].1.product;
    let dims: Vec<ForwardDims> = phases.iter().map(|p| p.1).collect();
    let buffers = [b.params, b.xproj, b.lengths, b.state, b.hs, b.cs, b.gates];
    let size = (p.steps as usize, p.batch as usize);
    encode(gpu, pass, &Shape::forward(phases), &dims, size, &buffers)
}

/// Records the backward recurrence of one layer and direction (with the dh_0 phase) with the
/// sequence kernel.
pub(crate) fn backward(
    gpu: &Gpu,
    pass: &mut wgpu::ComputePass<'_>,
    phases: &[(Pointwise, BackwardDims)],
    b: &BackwardBuffers<'_>,
) -> Result<()> {
    let p = phases[0].1.product;
    let dims: Vec<BackwardDims> = phases.iter().map(|p| p.1).collect();
    let buffers = [
        b.params, b.gates, b.saved, b.dy, b.lengths, b.dgates, b.state, b.probes,
    ];
    let size = (p.steps as usize, p.batch as usize);
    encode(gpu, pass, &Shape::backward(phases), &dims, size, &buffers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lstm(direction: Direction, units: u32, k_size: u32) -> Shape {
        let pointwise = Pointwise::Cell(Cell::Lstm);
        Shape {
            direction,
            phases: vec![Phase {
                pointwise,
                units,
                k_size,
            }],
        }
    }

    /// A chunk fits the loop budget with the dh_0 phase; T = 10^5 steps at H = 8 take a
    /// bounded number of dispatches; weights past the registers are refused, naming the limit.
    #[test]
    fn chunks_fit_the_loop_budget() {
        for shape in example_shapes()
            .into_iter()
            .chain([lstm(Direction::Forward, 64, 64)])
        {
            let per = shape.steps_per_dispatch().unwrap() as u64;
            assert!(
                per * shape.trips_per_step() + shape.trips_per_step() < LOOP_BUDGET,
                "{shape:?}"
            );
        }
        let per = lstm(Direction::Forward, 8, 8).steps_per_dispatch().unwrap();
        assert!(100_000usize.div_ceil(per) <= 10, "{per} steps per dispatch");
        assert!(lstm(Direction::Forward, 256, 256)
            .steps_per_dispatch()
            .is_ok());
        assert!(lstm(Direction::Backward, 256, 1024)
            .steps_per_dispatch()
            .is_ok());
        let err = lstm(Direction::Forward, 257, 257)
            .steps_per_dispatch()
            .unwrap_err();
        assert!(err.to_string().contains("registers"), "{err}");
    }
}
