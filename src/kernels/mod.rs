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

/// The tile constants of the step kernels as written: 16 hidden units × 16 batch rows per
/// workgroup, for batches of 5 and more.
pub const WIDE_TILES: &str =
    "const UNITS: u32 = 16u;\nconst BATCH_TILE: u32 = 16u;\nconst K_TILE: u32 = 16u;";
const NARROW_TILES: &str =
    "const UNITS: u32 = 64u;\nconst BATCH_TILE: u32 = 4u;\nconst K_TILE: u32 = 8u;";

/// Hidden units and batch rows per workgroup of the two step-kernel tilings.
pub(crate) const WIDE: (usize, usize) = (16, 16);
pub(crate) const NARROW: (usize, usize) = (64, 4);

/// A step kernel's source tiled for batches of at most 4: 64 units × 4 rows per workgroup, so
/// that a small batch does not leave most invocations computing padding rows.
pub fn with_narrow_tiles(source: &str) -> String {
    source.replace(WIDE_TILES, NARROW_TILES)
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
    step_pipeline(device, file, entry, layouts, false, false)
}

/// A pipeline of a step kernel: with `immediates`, its `slot` is 16 bytes of immediate data and
/// `layouts` holds group 0 only; else `slot` is the dynamic uniform of group 1.
pub(crate) fn step_pipeline(
    device: &wgpu::Device,
    file: &str,
    entry: &str,
    layouts: &[&wgpu::BindGroupLayout],
    immediates: bool,
    narrow: bool,
) -> wgpu::ComputePipeline {
    let mut code = source(file).to_string();
    if immediates {
        code = with_immediate_slot(&code);
    }
    if narrow {
        code = with_narrow_tiles(&code);
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

    /// The Rust tile sizes must be the WGSL constants (dispatch sizes are derived from them).
    #[test]
    fn tile_constants_match() {
        let parse = |text: &str, name: &str| -> usize {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("const {name}: u32 = ")))
                .unwrap();
            line.rsplit(' ')
                .next()
                .unwrap()
                .trim_end_matches("u;")
                .parse()
                .unwrap()
        };
        for (text, (units, rows)) in [(WIDE_TILES, WIDE), (NARROW_TILES, NARROW)] {
            assert_eq!(
                (parse(text, "UNITS"), parse(text, "BATCH_TILE")),
                (units, rows)
            );
        }
        for (name, source) in SHADER_SOURCES
            .iter()
            .filter(|(_, s)| s.contains(SLOT_UNIFORM))
        {
            assert!(
                source.contains(WIDE_TILES),
                "{name}: the tile constants are not as expected"
            );
            assert!(!with_narrow_tiles(source).contains(WIDE_TILES), "{name}");
        }
    }
}
