//! GPU timestamps around compute passes, for the benchmarks.

use super::{lock, Gpu};
use crate::error::{Error, Result};
use std::time::Duration;

/// Timestamp queries written at the beginning and end of every compute pass.
pub(super) struct Timer {
    query_set: wgpu::QuerySet,
    capacity: u32,
    next: u32,
    /// The label of each timed pass, in query order.
    labels: Vec<&'static str>,
}

/// GPU time of the compute passes recorded since the last [`Gpu::gpu_times`] call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuTimes {
    /// All passes together (the sum of their durations).
    pub total: Duration,
    /// From the first pass's beginning to the last pass's end: the passes plus the gaps
    /// between them, i.e. the GPU time of the whole call.
    pub span: Duration,
    /// Per kind of pass (`projection`, `recurrence`, `recurrence backward`, `weight gradients`,
    /// `clip`, …), in the order first seen.
    pub by_label: Vec<(&'static str, Duration)>,
}

impl Gpu {
    /// Starts measuring GPU time: every compute pass the engine records from now on writes
    /// timestamps (up to `passes` passes between two [`Gpu::gpu_time`] calls). Needs the
    /// adapter's `TIMESTAMP_QUERY` feature, which [`Gpu::new`] enables when present.
    pub fn enable_timing(&self, passes: u32) -> Result<()> {
        if !self
            .inner
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            return Err(Error::Invalid(
                "this device has no timestamp queries (feature TIMESTAMP_QUERY)".into(),
            ));
        }
        let capacity = (2 * passes).clamp(2, wgpu::QUERY_SET_MAX_QUERIES);
        let query_set = self.scoped(|| {
            Ok(self
                .inner
                .device
                .create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("pass timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: capacity,
                }))
        })?;
        *lock(&self.inner.timer) = Some(Timer {
            query_set,
            capacity,
            next: 0,
            labels: Vec::new(),
        });
        Ok(())
    }

    /// GPU time spent in the compute passes recorded since the last call (waits for them),
    /// in total and per kind of pass; `None` unless [`Gpu::enable_timing`] was called.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn gpu_times(&self) -> Result<Option<GpuTimes>> {
        super::readback::block(self.gpu_times_async())
    }

    /// [`Gpu::gpu_times`] as a future (for the web).
    pub async fn gpu_times_async(&self) -> Result<Option<GpuTimes>> {
        // Resolve inside the scope: locks in the order serialize → timer.
        let resolved = self.scoped(|| {
            let mut timer = lock(&self.inner.timer);
            let Some(t) = timer.as_mut() else {
                return Ok(None);
            };
            let used = t.next;
            let labels = std::mem::take(&mut t.labels);
            t.next = 0;
            if used == 0 {
                return Ok(Some(None));
            }
            let resolve = self.inner.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: used as u64 * 8,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut encoder = self.encoder("resolve timestamps");
            encoder.resolve_query_set(&t.query_set, 0..used, &resolve, 0);
            self.inner.queue.submit([encoder.finish()]);
            Ok(Some(Some((used, resolve, labels))))
        })?;
        let (used, resolve, labels) = match resolved {
            None => return Ok(None),
            Some(None) => return Ok(Some(GpuTimes::default())),
            Some(Some(r)) => r,
        };
        let bytes = self.read_bytes_async(&resolve, 0, used as u64 * 8).await?;
        let period = self.inner.queue.get_timestamp_period() as f64;
        Ok(Some(times_of(&bytes, labels, period)))
    }

    /// The total of [`Gpu::gpu_times`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn gpu_time(&self) -> Result<Option<Duration>> {
        Ok(self.gpu_times()?.map(|t| t.total))
    }

    /// A compute pass, timed when timing is enabled.
    pub(crate) fn compute_pass<'e>(
        &self,
        encoder: &'e mut wgpu::CommandEncoder,
        label: &'static str,
    ) -> wgpu::ComputePass<'e> {
        let mut timer = lock(&self.inner.timer);
        let writes = timer.as_mut().and_then(|t| {
            (t.next + 2 <= t.capacity).then(|| {
                let begin = t.next;
                t.next += 2;
                t.labels.push(label);
                (begin, &t.query_set)
            })
        });
        match writes {
            Some((begin, query_set)) => encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set,
                    beginning_of_pass_write_index: Some(begin),
                    end_of_pass_write_index: Some(begin + 1),
                }),
            }),
            None => encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: None,
            }),
        }
    }
}

/// The times of resolved (begin, end) timestamp pairs, one per pass of `labels`.
fn times_of(bytes: &[u8], labels: Vec<&'static str>, period: f64) -> GpuTimes {
    let mut times = GpuTimes::default();
    let stamp = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
    let first = bytes
        .chunks_exact(8)
        .step_by(2)
        .map(stamp)
        .min()
        .unwrap_or(0);
    let last = bytes
        .chunks_exact(8)
        .skip(1)
        .step_by(2)
        .map(stamp)
        .max()
        .unwrap_or(0);
    let duration = |ticks: u64| Duration::from_nanos((ticks as f64 * period) as u64);
    times.span = duration(last.saturating_sub(first));
    for (pair, label) in bytes.chunks_exact(16).zip(labels) {
        let d = duration(stamp(&pair[8..]).saturating_sub(stamp(&pair[..8])));
        times.total += d;
        match times.by_label.iter_mut().find(|(l, _)| *l == label) {
            Some((_, sum)) => *sum += d,
            None => times.by_label.push((label, d)),
        }
    }
    times
}
