//! The tilings of the step kernels and the device's choice among them.

use super::Direction;
use crate::gpu::{lock, Gpu};
use std::sync::{Arc, Mutex};

/// The tile constants of a step kernel: each workgroup owns `units` output units ×
/// `batch_tile` batch rows, walks K in slices of `k_tile`, and splits every dot product over
/// `k_split` invocations whose partial sums are added in workgroup memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tiling {
    /// Output units per workgroup.
    pub units: usize,
    /// Batch rows per workgroup (4 per invocation).
    pub batch_tile: usize,
    /// Width of the K slices staged in workgroup memory.
    pub k_tile: usize,
    /// Invocations that share one dot product (a power of two).
    pub k_split: usize,
}

impl Tiling {
    /// 16 units × 16 rows: batches of 5 and more on CPU adapters.
    pub const WIDE: Tiling = Tiling::new(16, 16, 16, 1);
    /// 64 units × 4 rows, one invocation per dot product: batches of at most 4 on CPU adapters,
    /// where few, long invocations suit the few cores.
    pub const NARROW: Tiling = Tiling::new(64, 4, 8, 1);
    /// 4 units × 4 rows, 16 invocations per dot product: batches of at most 4 on GPUs in the
    /// forward kernels, whose W_hh rows run along K (H/4 workgroups: 128 at H = 512).
    pub const SPLIT_FORWARD: Tiling = Tiling::new(4, 4, 64, 16);
    /// 8 units × 4 rows, 8 invocations per dot product: the backward kernels read W_hh along
    /// the units, so 8 neighbouring units make 32-byte reads (H/8 workgroups).
    pub const SPLIT_BACKWARD: Tiling = Tiling::new(8, 4, 64, 8);
    /// 16 units × 16 rows with 4 invocations per dot product (256 per workgroup): batches of
    /// 5 and more on GPUs. A step's dot products are sequential chains of K multiply-adds per
    /// invocation; splitting them 4 ways shortens the chain that bounds a step's latency and
    /// gives the GPU 4× the invocations to hide memory latency with (at B = 64, H = 512: 128
    /// workgroups of 256 instead of 64).
    pub const WIDE_SPLIT: Tiling = Tiling::new(16, 16, 32, 4);

    const fn new(units: usize, batch_tile: usize, k_tile: usize, k_split: usize) -> Tiling {
        Tiling {
            units,
            batch_tile,
            k_tile,
            k_split,
        }
    }

    /// Invocations per workgroup: each keeps 4 batch rows of one unit, for every
    /// `k_split`-th k.
    pub fn threads(&self) -> usize {
        self.units * (self.batch_tile / 4) * self.k_split
    }

    /// The tiling `choice` stands for in `direction`.
    pub(super) fn of(choice: StepTiling, direction: Direction) -> Tiling {
        match choice {
            StepTiling::Wide | StepTiling::Auto => Tiling::WIDE,
            StepTiling::Narrow => Tiling::NARROW,
            StepTiling::Split if direction == Direction::Forward => Tiling::SPLIT_FORWARD,
            StepTiling::Split => Tiling::SPLIT_BACKWARD,
            StepTiling::WideSplit => Tiling::WIDE_SPLIT,
        }
    }
}

/// Which tiling the step kernels use (see [`Gpu::set_step_tiling`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum StepTiling {
    /// On GPUs wide-split for batches of 5 and more, split for at most 4; on CPU adapters
    /// (few cores, where long invocations win) wide and narrow.
    #[default]
    Auto,
    /// Always [`Tiling::WIDE`].
    Wide,
    /// Always [`Tiling::NARROW`].
    Narrow,
    /// Always [`Tiling::SPLIT_FORWARD`] / [`Tiling::SPLIT_BACKWARD`].
    Split,
    /// Always [`Tiling::WIDE_SPLIT`].
    WideSplit,
}

impl StepTiling {
    /// Parses `auto`, `wide`, `narrow`, `split` or `wide-split` (the `WGPU_LSTM_TILING`
    /// values).
    pub fn parse(name: &str) -> Option<StepTiling> {
        match name {
            "auto" => Some(StepTiling::Auto),
            "wide" => Some(StepTiling::Wide),
            "narrow" => Some(StepTiling::Narrow),
            "split" => Some(StepTiling::Split),
            "wide-split" => Some(StepTiling::WideSplit),
            _ => None,
        }
    }

    /// The concrete tiling (never `Auto`) for `batch` rows on a device of `device_type`.
    pub(crate) fn resolve(self, batch: usize, device_type: wgpu::DeviceType) -> StepTiling {
        let cpu = device_type == wgpu::DeviceType::Cpu;
        match (self, batch > 4, cpu) {
            (StepTiling::Auto, true, true) => StepTiling::Wide,
            (StepTiling::Auto, false, true) => StepTiling::Narrow,
            (StepTiling::Auto, false, false) => StepTiling::Split,
            (StepTiling::Auto, true, false) => StepTiling::WideSplit,
            (concrete, _, _) => concrete,
        }
    }

    pub(super) const ALL: [StepTiling; 4] = [
        StepTiling::Wide,
        StepTiling::Narrow,
        StepTiling::Split,
        StepTiling::WideSplit,
    ];
}

/// The step kernels' settings of one device.
pub(super) struct StepSettings {
    pub tiling: Mutex<std::result::Result<StepTiling, String>>,
}

impl StepSettings {
    /// `WGPU_LSTM_TILING` if set (an invalid value is an error at the first use), else auto.
    fn from_env() -> StepSettings {
        let tiling = match std::env::var("WGPU_LSTM_TILING") {
            Ok(name) => StepTiling::parse(&name).ok_or(format!(
                "WGPU_LSTM_TILING={name}: expected auto, wide, narrow, split or wide-split"
            )),
            Err(_) => Ok(StepTiling::Auto),
        };
        StepSettings {
            tiling: Mutex::new(tiling),
        }
    }
}

pub(super) fn settings(gpu: &Gpu) -> Arc<StepSettings> {
    gpu.state(StepSettings::from_env)
}

impl Gpu {
    /// Chooses the tiling of the recurrent step kernels for every model on this device (all
    /// tilings compute the same results; they differ in speed). The default,
    /// [`StepTiling::Auto`], or the `WGPU_LSTM_TILING` environment variable (`auto`, `wide`,
    /// `narrow`, `split`, `wide-split`) when set.
    pub fn set_step_tiling(&self, tiling: StepTiling) {
        *lock(&settings(self).tiling) = Ok(tiling);
    }

    /// The tiling setting of the recurrent step kernels (auto when `WGPU_LSTM_TILING` is
    /// invalid: the models report that error).
    pub fn step_tiling(&self) -> StepTiling {
        lock(&settings(self).tiling).clone().unwrap_or_default()
    }
}

/// Whether the timestep goes in immediate data on this device (else a uniform slot at a
/// dynamic offset). Where the device has immediates they are used: lavapipe leaks memory in
/// proportion to the bound buffers when a descriptor set is rebound at every step.
pub(super) fn immediates(gpu: &Gpu) -> bool {
    gpu.device().features().contains(wgpu::Features::IMMEDIATES)
        && gpu.limits().max_immediate_size >= 16
}
