//! The per-timestep uniform slots of the step kernels on devices without immediates.

use super::flags::H0_MODE;
use crate::error::{Error, Result};
use crate::gpu::{lock, Gpu};
use std::sync::{Arc, Mutex};

/// A uniform buffer with one slot per timestep, bound with a dynamic offset so that every step of
/// a sequence reuses one bind group (DESIGN.md §4). Slot `t < capacity` holds `(t, 0, 0, 0)`;
/// the extra slot at index `capacity` holds `(0, H0_MODE, 0, 0)` for the backward pass's last
/// dispatch.
pub(super) struct StepSlots {
    pub buffer: wgpu::Buffer,
    capacity: u32,
    stride: u32,
}

/// The device's slots, grown (doubling) when a longer sequence comes.
#[derive(Default)]
struct SlotCache(Mutex<Option<Arc<StepSlots>>>);

impl StepSlots {
    /// Slots for sequences of at least `steps` timesteps.
    pub fn for_steps(gpu: &Gpu, steps: usize) -> Result<Arc<StepSlots>> {
        let cache = gpu.state(SlotCache::default);
        gpu.scoped(|| {
            let mut slot = lock(&cache.0);
            if let Some(s) = slot.as_ref() {
                if s.capacity as usize >= steps {
                    return Ok(s.clone());
                }
            }
            let slots = Arc::new(StepSlots::new(gpu, steps)?);
            *slot = Some(slots.clone());
            Ok(slots)
        })
    }

    fn new(gpu: &Gpu, steps: usize) -> Result<StepSlots> {
        let capacity = steps.next_power_of_two().max(64);
        let stride = gpu.limits().min_uniform_buffer_offset_alignment.max(16);
        let bytes = (capacity as u64 + 1) * stride as u64;
        if bytes > u32::MAX as u64 {
            // Dynamic offsets are u32.
            return Err(Error::Limit {
                what: format!("{steps} timesteps of per-step uniform slots"),
                limit: "dynamic offsets (u32)",
                needed: bytes,
                available: u32::MAX as u64,
            });
        }
        gpu.check_buffer_size("the per-timestep uniform slots", bytes, false)?;
        let words_per_slot = stride as usize / 4;
        let mut data = vec![0u32; (capacity + 1) * words_per_slot];
        for t in 0..capacity {
            data[t * words_per_slot] = t as u32;
        }
        data[capacity * words_per_slot + 1] = H0_MODE;
        let buffer = wgpu::util::DeviceExt::create_buffer_init(
            gpu.device(),
            &wgpu::util::BufferInitDescriptor {
                label: Some("step slots"),
                contents: bytemuck::cast_slice(&data),
                usage: wgpu::BufferUsages::UNIFORM,
            },
        );
        Ok(StepSlots {
            buffer,
            capacity: capacity as u32,
            stride,
        })
    }

    /// Dynamic offset of timestep `t`'s slot.
    pub fn offset(&self, t: usize) -> u32 {
        debug_assert!((t as u32) < self.capacity);
        t as u32 * self.stride
    }

    /// Dynamic offset of the slot that selects the backward pass's `dh_0` mode.
    pub fn h0_offset(&self) -> u32 {
        self.capacity * self.stride
    }
}
