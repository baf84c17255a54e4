//! A per-device pipeline cache keyed by shader, entry point and variant (as candle's and
//! web-rwkv's are), and the bind-group helpers the kernels share. The cache knows nothing of the
//! kernels: they name their pipelines and hand over the source to build on a miss.

use super::{lock, Gpu};
use crate::error::Result;
use std::collections::HashMap;
use std::sync::Arc;

/// How a shader sees one binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binding {
    /// A uniform buffer.
    Uniform,
    /// A uniform read at a dynamic offset, of this many bytes (per-dispatch values).
    DynamicUniform(u64),
    /// A read-only storage buffer.
    Read,
    /// A read-write storage buffer.
    ReadWrite,
}

/// What identifies a pipeline on a device.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    /// The shader (file or generated family), e.g. `gemm`.
    pub shader: &'static str,
    /// The entry point.
    pub entry: &'static str,
    /// What else the source depends on: constants, tiling, cell, immediates (empty if nothing).
    pub variant: String,
}

impl PipelineKey {
    /// The key of `entry` in `shader` with no variants.
    pub fn plain(shader: &'static str, entry: &'static str) -> PipelineKey {
        PipelineKey {
            shader,
            entry,
            variant: String::new(),
        }
    }
}

/// A compute pipeline and the layouts of its bind groups (group `i` is `layouts[i]`).
pub struct Pipeline {
    pub(crate) compute: wgpu::ComputePipeline,
    pub(crate) layouts: Vec<wgpu::BindGroupLayout>,
}

/// The pipelines built so far on one device.
#[derive(Default)]
pub(super) struct PipelineCache {
    pipelines: HashMap<PipelineKey, Arc<Pipeline>>,
}

impl Gpu {
    /// The pipeline `key`, built from `source()` on first use: bind group `i` has the bindings
    /// `groups[i]`, and the pipeline takes `immediate_size` bytes of immediate data. A pipeline
    /// whose creation failed (a shader the device rejects) is an error and is not kept.
    pub(crate) fn pipeline(
        &self,
        key: PipelineKey,
        groups: &[&[Binding]],
        immediate_size: u32,
        source: impl FnOnce() -> String,
    ) -> Result<Arc<Pipeline>> {
        // Locks in the order serialize (inside `scoped`) → pipelines.
        self.scoped(|| {
            let mut cache = lock(&self.inner.pipelines);
            if let Some(p) = cache.pipelines.get(&key) {
                return Ok(p.clone());
            }
            // Checked once, when the pipeline is first built (not on every lookup).
            self.check_bindings(&key, groups)?;
            let pipeline =
                Arc::new(self.created(|| self.build(&key, groups, immediate_size, source()))?);
            cache.pipelines.insert(key, pipeline.clone());
            Ok(pipeline)
        })
    }

    /// Checks the bindings of pipeline `key` against the device's per-stage limits up front, so
    /// that a device too small for a kernel (a GLES device, a browser at WebGPU's minimums) is a
    /// clear `Error::Limit` naming the limit, not a validation message after the fact.
    fn check_bindings(&self, key: &PipelineKey, groups: &[&[Binding]]) -> Result<()> {
        let limits = &self.inner.limits;
        let count = |f: fn(&Binding) -> bool| -> u64 {
            groups
                .iter()
                .flat_map(|g| g.iter())
                .filter(|b| f(b))
                .count() as u64
        };
        let checks = [
            (
                "max_storage_buffers_per_shader_stage",
                count(|b| matches!(b, Binding::Read | Binding::ReadWrite)),
                limits.max_storage_buffers_per_shader_stage,
            ),
            (
                "max_uniform_buffers_per_shader_stage",
                count(|b| matches!(b, Binding::Uniform | Binding::DynamicUniform(_))),
                limits.max_uniform_buffers_per_shader_stage,
            ),
            (
                "max_dynamic_uniform_buffers_per_pipeline_layout",
                count(|b| matches!(b, Binding::DynamicUniform(_))),
                limits.max_dynamic_uniform_buffers_per_pipeline_layout,
            ),
            (
                "max_bind_groups",
                groups.len() as u64,
                limits.max_bind_groups,
            ),
        ];
        match checks
            .into_iter()
            .find(|(_, needed, available)| needed > &(*available as u64))
        {
            Some((limit, needed, available)) => Err(crate::Error::Limit {
                what: format!("the `{}` kernel ({})", key.entry, key.shader),
                limit,
                needed,
                available: available as u64,
            }),
            None => Ok(()),
        }
    }

    fn build(
        &self,
        key: &PipelineKey,
        groups: &[&[Binding]],
        immediate_size: u32,
        source: String,
    ) -> Pipeline {
        let device = &self.inner.device;
        let layouts: Vec<wgpu::BindGroupLayout> = groups
            .iter()
            .map(|bindings| bind_group_layout(device, key.entry, bindings))
            .collect();
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(key.shader),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(key.entry),
            bind_group_layouts: &layouts.iter().map(Some).collect::<Vec<_>>(),
            immediate_size,
        });
        let compute = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(key.entry),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(key.entry),
            compilation_options: Default::default(),
            cache: None,
        });
        Pipeline { compute, layouts }
    }

    /// A bind group of `pipeline`'s group `group` whose binding `i` is the whole of `buffers[i]`.
    pub(crate) fn bind_group(
        &self,
        pipeline: &Pipeline,
        group: usize,
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
        self.inner
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.layouts[group],
                entries: &entries,
            })
    }

    /// A bind group of `pipeline`'s group 0 whose binding 0 is a new uniform buffer holding
    /// `params` (named `what`) and binding `i + 1` is the whole of `buffers[i]`: how most
    /// kernels pass their sizes and operands.
    pub(crate) fn uniform_group<T: bytemuck::Pod>(
        &self,
        pipeline: &Pipeline,
        what: &str,
        params: &T,
        buffers: &[&wgpu::Buffer],
    ) -> crate::error::Result<wgpu::BindGroup> {
        let uniform = self.uniform(what, params)?;
        let all: Vec<&wgpu::Buffer> = std::iter::once(&uniform)
            .chain(buffers.iter().copied())
            .collect();
        Ok(self.bind_group(pipeline, 0, &all))
    }

    /// A bind group of `pipeline`'s group `group` whose only binding is a `size`-byte window of
    /// `buffer`, moved by a dynamic offset at each dispatch.
    pub(crate) fn bind_group_window(
        &self,
        pipeline: &Pipeline,
        group: usize,
        buffer: &wgpu::Buffer,
        size: u64,
    ) -> wgpu::BindGroup {
        self.inner
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.layouts[group],
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset: 0,
                        size: wgpu::BufferSize::new(size),
                    }),
                }],
            })
    }

    /// Records one dispatch of `pipeline` with `group` as bind group 0: the common case of a
    /// kernel launch.
    pub(crate) fn launch(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        pipeline: &Pipeline,
        group: &wgpu::BindGroup,
        workgroups: [u32; 3],
    ) {
        pass.set_pipeline(&pipeline.compute);
        pass.set_bind_group(0, group, &[]);
        self.dispatch(pass, workgroups);
    }
}

/// An explicit bind-group layout: binding `i` is `bindings[i]`.
fn bind_group_layout(
    device: &wgpu::Device,
    label: &str,
    bindings: &[Binding],
) -> wgpu::BindGroupLayout {
    let entries: Vec<_> = bindings
        .iter()
        .enumerate()
        .map(|(i, binding)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: match *binding {
                Binding::Uniform => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                Binding::DynamicUniform(size) => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(size),
                },
                Binding::Read | Binding::ReadWrite => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: matches!(binding, Binding::Read),
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

/// `ceil(n / d)` as a workgroup count.
pub(crate) fn groups(n: usize, d: usize) -> u32 {
    n.div_ceil(d) as u32
}
