//! One module per shader: its pipelines, bind-group layouts and dispatch sizes. Kernels know
//! nothing of models; they take buffers, element offsets and sizes.

pub(crate) mod column_sum;
pub(crate) mod gemm;
pub(crate) mod loss;
pub(crate) mod lstm_step;
pub(crate) mod lstm_step_back;
pub(crate) mod optim;
pub(crate) mod reduce;
pub(crate) mod sequence;
mod step;

/// Activation helpers prepended to the recurrent kernels.
macro_rules! with_activations {
    ($file:literal) => {
        concat!(
            include_str!("../../shaders/activations.wgsl"),
            "\n",
            include_str!(concat!("../../shaders/", $file))
        )
    };
}

/// Every WGSL module the engine compiles, as `(file name, full source)`. The naga test parses,
/// validates and translates exactly these.
pub const SHADER_SOURCES: &[(&str, &str)] = &[
    ("gemm.wgsl", include_str!("../../shaders/gemm.wgsl")),
    ("lstm_step.wgsl", with_activations!("lstm_step.wgsl")),
    (
        "lstm_step_back.wgsl",
        with_activations!("lstm_step_back.wgsl"),
    ),
    ("reduce.wgsl", include_str!("../../shaders/reduce.wgsl")),
    (
        "column_sum.wgsl",
        include_str!("../../shaders/column_sum.wgsl"),
    ),
    ("sequence.wgsl", include_str!("../../shaders/sequence.wgsl")),
    ("rnn_step.wgsl", with_activations!("rnn_step.wgsl")),
    (
        "rnn_step_back.wgsl",
        with_activations!("rnn_step_back.wgsl"),
    ),
    ("optim.wgsl", include_str!("../../shaders/optim.wgsl")),
    ("loss.wgsl", include_str!("../../shaders/loss.wgsl")),
    ("one_hot.wgsl", include_str!("../../shaders/one_hot.wgsl")),
];

/// The per-step uniform declaration of the step kernels (replaced by immediate data where the
/// device has immediates).
pub const SLOT_UNIFORM: &str = "@group(1) @binding(0) var<uniform> slot: StepSlot;";
const SLOT_IMMEDIATE: &str = "var<immediate> slot: StepSlot;";

/// A step kernel's source for devices with immediates: `slot` becomes immediate data, set
/// with `set_immediates` at each step instead of rebinding a uniform at a dynamic offset.
pub fn with_immediate_slot(source: &str) -> String {
    source.replace(SLOT_UNIFORM, SLOT_IMMEDIATE)
}

/// The tile constants of a step kernel: each workgroup owns `units` hidden units × `batch_tile`
/// batch rows, walks K in slices of `k_tile`, and splits every dot product over `k_split`
/// invocations whose partial sums are added in workgroup memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiling {
    /// Hidden units per workgroup.
    pub units: usize,
    /// Batch rows per workgroup (4 per invocation).
    pub batch_tile: usize,
    /// Width of the K slices staged in workgroup memory.
    pub k_tile: usize,
    /// Invocations that share one dot product (a power of two).
    pub k_split: usize,
}

impl Tiling {
    /// 16 units × 16 rows: the constants as written in the shaders, for batches of 5 and more.
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

    /// The WGSL constant declarations of this tiling, as they open every step shader.
    pub fn constants(&self) -> String {
        format!(
            "const UNITS: u32 = {}u;\nconst BATCH_TILE: u32 = {}u;\nconst K_TILE: u32 = {}u;\nconst K_SPLIT: u32 = {}u;",
            self.units, self.batch_tile, self.k_tile, self.k_split
        )
    }

    /// A step shader's source with this tiling instead of [`Tiling::WIDE`].
    pub fn apply(&self, source: &str) -> String {
        source.replace(&Tiling::WIDE.constants(), &self.constants())
    }
}

/// Which tiling the step kernels use (see [`Gpu::set_step_tiling`](crate::Gpu::set_step_tiling)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
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
}

fn source(name: &str) -> &'static str {
    SHADER_SOURCES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .unwrap_or_else(|| unreachable!("shader {name} is listed in SHADER_SOURCES"))
}

/// All pipelines of the engine for one device.
pub(crate) struct Kernels {
    pub gemm: gemm::GemmKernel,
    pub lstm_step: lstm_step::LstmStepKernel,
    pub lstm_step_back: lstm_step_back::LstmStepBackKernel,
    pub reduce: reduce::ReduceKernel,
    pub column_sum: column_sum::ColumnSumKernel,
    pub sequence: sequence::SequenceKernel,
    pub optim: optim::OptimKernel,
    pub loss: loss::LossKernel,
}

impl Kernels {
    pub fn new(device: &wgpu::Device) -> Kernels {
        Kernels {
            gemm: gemm::GemmKernel::new(device),
            lstm_step: lstm_step::LstmStepKernel::new(device),
            lstm_step_back: lstm_step_back::LstmStepBackKernel::new(device),
            reduce: reduce::ReduceKernel::new(device),
            column_sum: column_sum::ColumnSumKernel::new(device),
            sequence: sequence::SequenceKernel::new(device),
            optim: optim::OptimKernel::new(device),
            loss: loss::LossKernel::new(device),
        }
    }
}

/// How a shader sees one binding.
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    Uniform,
    /// A uniform read at a dynamic offset (the per-timestep slots), `size` bytes.
    DynamicUniform(u64),
    Read,
    ReadWrite,
}

/// An explicit bind-group layout: binding `i` is `slots[i]`.
pub(crate) fn bind_group_layout(
    device: &wgpu::Device,
    label: &str,
    slots: &[Slot],
) -> wgpu::BindGroupLayout {
    let entries: Vec<_> = slots
        .iter()
        .enumerate()
        .map(|(i, slot)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: match *slot {
                Slot::Uniform => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                Slot::DynamicUniform(size) => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(size),
                },
                Slot::Read | Slot::ReadWrite => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: matches!(slot, Slot::Read),
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
            },
            count: None,
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &entries,
    })
}

/// A compute pipeline for `entry` of shader `file` with one explicit bind-group layout.
pub(crate) fn pipeline(
    device: &wgpu::Device,
    file: &str,
    entry: &str,
    layout: &wgpu::BindGroupLayout,
) -> wgpu::ComputePipeline {
    pipeline_with_groups(device, file, entry, &[layout])
}

/// A compute pipeline whose bind group `i` has layout `layouts[i]`.
pub(crate) fn pipeline_with_groups(
    device: &wgpu::Device,
    file: &str,
    entry: &str,
    layouts: &[&wgpu::BindGroupLayout],
) -> wgpu::ComputePipeline {
    step_pipeline(device, file, entry, layouts, false, None)
}

/// A pipeline of a step kernel: with `immediates`, its `slot` is 16 bytes of immediate data and
/// `layouts` holds group 0 only; else `slot` is the dynamic uniform of group 1. `tiling`
/// replaces the step kernels' tile constants (`None` for other shaders).
pub(crate) fn step_pipeline(
    device: &wgpu::Device,
    file: &str,
    entry: &str,
    layouts: &[&wgpu::BindGroupLayout],
    immediates: bool,
    tiling: Option<Tiling>,
) -> wgpu::ComputePipeline {
    let mut code = source(file).to_string();
    if immediates {
        code = with_immediate_slot(&code);
    }
    if let Some(tiling) = tiling {
        code = tiling.apply(&code);
    }
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(file),
        source: wgpu::ShaderSource::Wgsl(code.into()),
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(entry),
        bind_group_layouts: &layouts.iter().map(|l| Some(*l)).collect::<Vec<_>>(),
        immediate_size: if immediates { 16 } else { 0 },
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(entry),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some(entry),
        compilation_options: Default::default(),
        cache: None,
    })
}

/// A bind group whose binding `i` is the whole of `buffers[i]`.
pub(crate) fn bind_group(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let entries: Vec<_> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout,
        entries: &entries,
    })
}

/// A bind group like [`bind_group`], except that binding `dynamic` is a `size`-byte window of
/// its buffer moved by a dynamic offset.
pub(crate) fn bind_group_dynamic(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    buffers: &[&wgpu::Buffer],
    dynamic: usize,
    size: u64,
) -> wgpu::BindGroup {
    let entries: Vec<_> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: if i == dynamic {
                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: b,
                    offset: 0,
                    size: wgpu::BufferSize::new(size),
                })
            } else {
                b.as_entire_binding()
            },
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout,
        entries: &entries,
    })
}

/// `ceil(n / d)` as a workgroup count.
pub(crate) fn groups(n: usize, d: usize) -> u32 {
    n.div_ceil(d) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step shader opens with the wide constants, so that every tiling replaces them.
    #[test]
    fn tilings_apply_to_every_step_shader() {
        let tilings = [
            Tiling::NARROW,
            Tiling::SPLIT_FORWARD,
            Tiling::SPLIT_BACKWARD,
            Tiling::WIDE_SPLIT,
        ];
        let step_shaders: Vec<_> = SHADER_SOURCES
            .iter()
            .filter(|(_, s)| s.contains(SLOT_UNIFORM))
            .collect();
        assert_eq!(step_shaders.len(), 4);
        for (name, source) in step_shaders {
            assert!(
                source.contains(&Tiling::WIDE.constants()),
                "{name}: the tile constants are not as expected"
            );
            for tiling in tilings {
                let tiled = tiling.apply(source);
                assert!(tiled.contains(&tiling.constants()), "{name} {tiling:?}");
                assert!(!tiled.contains(&Tiling::WIDE.constants()), "{name}");
            }
        }
    }

    #[test]
    fn auto_tiling_by_batch_and_device() {
        use wgpu::DeviceType::{Cpu, DiscreteGpu};
        use StepTiling::*;
        assert_eq!(Auto.resolve(5, DiscreteGpu), WideSplit);
        assert_eq!(Auto.resolve(4, DiscreteGpu), Split);
        assert_eq!(Auto.resolve(1, Cpu), Narrow);
        assert_eq!(Auto.resolve(64, Cpu), Wide);
        assert_eq!(Wide.resolve(1, DiscreteGpu), Wide);
        assert_eq!(StepTiling::parse("split"), Some(StepTiling::Split));
        assert_eq!(StepTiling::parse("tall"), None);
    }
}
