//! Benchmarks shared by `wgpu-lstm bench` and `benches/`: inference and training time per call
//! at fixed sizes, GFLOP/s, dispatches per step and GPU memory held.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::kernels::Recurrence;
use crate::model::{Lstm, LstmConfig, OutputGrads};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// A problem size `T×B×I×H`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchSize {
    /// Timesteps T.
    pub steps: usize,
    /// Batch B.
    pub batch: usize,
    /// Input features I.
    pub input: usize,
    /// Hidden units H.
    pub hidden: usize,
}

impl BenchSize {
    const fn new(steps: usize, batch: usize, input: usize, hidden: usize) -> BenchSize {
        BenchSize {
            steps,
            batch,
            input,
            hidden,
        }
    }

    /// Floating-point operations of one forward pass: `2·T·B·4H·(I+H)` (the two GEMMs; the
    /// elementwise work is not counted). Training counts three times that.
    pub fn forward_flops(&self) -> f64 {
        2.0 * (self.steps * self.batch * 4 * self.hidden * (self.input + self.hidden)) as f64
    }
}

/// The sizes of the issue (cuDNN's usual benchmark shapes).
pub const STANDARD_SIZES: [BenchSize; 5] = [
    BenchSize::new(100, 64, 512, 512),
    BenchSize::new(100, 64, 1024, 1024),
    BenchSize::new(100, 1, 512, 512),
    BenchSize::new(150, 16, 256, 256),
    BenchSize::new(25, 64, 512, 512),
];

/// Small sizes that finish in seconds on a software rasteriser (CI).
pub const SMOKE_SIZES: [BenchSize; 2] =
    [BenchSize::new(8, 2, 7, 13), BenchSize::new(16, 4, 16, 32)];

impl fmt::Display for BenchSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{}x{}x{}",
            self.steps, self.batch, self.input, self.hidden
        )
    }
}

impl FromStr for BenchSize {
    type Err = Error;
    fn from_str(s: &str) -> Result<BenchSize> {
        let parts: Vec<usize> = s
            .split('x')
            .map(|p| p.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad_size(s))?;
        match parts[..] {
            [t, b, i, h] if t > 0 && b > 0 && i > 0 && h > 0 => Ok(BenchSize::new(t, b, i, h)),
            _ => Err(bad_size(s)),
        }
    }
}

fn bad_size(s: &str) -> Error {
    Error::Invalid(format!(
        "size `{s}`: expected TxBxIxH with positive integers, e.g. 100x64x512x512"
    ))
}

/// What is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A forward pass without kept activations.
    Inference,
    /// Forward (keeping activations), backward, and gradient clipping.
    Training,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Inference => "inference",
            Mode::Training => "training",
        })
    }
}

/// One measured row.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The size.
    pub size: BenchSize,
    /// Inference or training.
    pub mode: Mode,
    /// Median milliseconds per call.
    pub ms: f64,
    /// Fastest call.
    pub ms_min: f64,
    /// `ms / T` in microseconds.
    pub us_per_step: f64,
    /// FLOPs (see [`BenchSize::forward_flops`]) per second, in GFLOP/s.
    pub gflops: f64,
    /// The recurrence the calls took (`auto` resolved).
    pub recurrence: Recurrence,
    /// Compute dispatches per timestep (the design with the step kernels: 1 forward, 2 when
    /// training): the counted calls' dispatches less the O(1) ones, over T; 0 with the
    /// sequence kernel, whose dispatches are O(1) per call.
    pub dispatches_per_step: usize,
    /// All compute dispatches of one call (the per-step ones, GEMMs, clipping), as counted by
    /// [`Gpu::dispatch_count`](crate::Gpu::dispatch_count).
    pub dispatches_per_call: usize,
    /// Host time spent recording and submitting, per timestep, in microseconds.
    pub host_us_per_step: f64,
    /// GPU memory held by the engine for one call: parameters, gradients, activations kept for
    /// training and outputs, in bytes.
    pub memory_bytes: u64,
    /// `gpu-timestamps` or `wall-clock`.
    pub timing: &'static str,
    /// Mean GPU milliseconds per call by kind of pass (`projection`, `recurrence`, `recurrence
    /// backward`, `weight and input gradients`, `clip`, `layout`), with timestamps only.
    pub breakdown: Vec<(&'static str, f64)>,
}

/// Times `iters` calls (after `warmup` more) of one size and mode. With timestamp queries the
/// GPU time of the engine's compute passes is measured, else the wall clock around each call
/// and its wait.
pub fn measure(
    gpu: &Gpu,
    size: BenchSize,
    mode: Mode,
    warmup: usize,
    iters: usize,
) -> Result<Measurement> {
    if iters == 0 {
        return Err(Error::Invalid("at least one timed call is needed".into()));
    }
    // The host data is made before any GPU buffer: check the sizes against the device first.
    let widest = size.input.max(4 * size.hidden);
    let bytes = [size.steps, size.batch, widest, 4]
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d as u64));
    let limit = gpu.limits().max_storage_buffer_binding_size;
    if bytes.is_none_or(|b| b > limit) {
        return Err(Error::Limit {
            what: format!("the activations of size {size}"),
            limit: "max_storage_buffer_binding_size",
            needed: bytes.unwrap_or(u64::MAX),
            available: limit,
        });
    }
    let lstm = Lstm::new(gpu, LstmConfig::new(size.input, size.hidden))?;
    let (t, b) = (size.steps, size.batch);
    let (recurrence, d) = lstm.dispatch_counts(t, b)?;
    let x = Tensor::from_slice(gpu, &[t, b, size.input], &pseudo_random(t * b * size.input))?;
    let dy = Tensor::from_slice(
        gpu,
        &[t, b, size.hidden],
        &pseudo_random(t * b * size.hidden),
    )?;
    let timed = gpu.enable_timing(64).is_ok();
    let mut times = Vec::with_capacity(iters);
    let mut breakdown: Vec<(&'static str, f64)> = Vec::new();
    let mut host = Duration::ZERO;
    let mut memory = 0;
    let mut dispatches = 0;
    for i in 0..warmup + iters {
        let dispatched_before = gpu.dispatch_count();
        gpu.gpu_time()?; // clear what earlier calls recorded
        let start = Instant::now();
        let held = match mode {
            Mode::Inference => {
                let out = lstm.forward(&x, None, None)?;
                out.y.buffer().size()
            }
            Mode::Training => {
                let out = lstm.forward_train(&x, None, None)?;
                let cache = out
                    .cache
                    .as_ref()
                    .ok_or_else(|| Error::Invalid("no cache".into()))?;
                lstm.backward(cache, &OutputGrads::dy(&dy), false)?;
                lstm.params().clip_grad_norm(1.0, false)?;
                out.y.buffer().size() + cache.activation_bytes() + 4 * lstm.params().len() as u64
            }
        };
        let recorded = start.elapsed();
        dispatches = gpu.dispatch_count() - dispatched_before;
        gpu.wait()?;
        let wall = start.elapsed();
        let gpu_times = if timed { gpu.gpu_times()? } else { None };
        // The span (first pass's beginning to last pass's end) counts the gaps between passes,
        // as a whole-call timing such as PyTorch's CUDA events does.
        let elapsed = gpu_times.as_ref().map_or(wall, |t| t.span);
        if i >= warmup {
            for (label, d) in gpu_times.map(|t| t.by_label).unwrap_or_default() {
                let ms = d.as_secs_f64() * 1e3 / iters as f64;
                match breakdown.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, sum)) => *sum += ms,
                    None => breakdown.push((label, ms)),
                }
            }
        }
        if i >= warmup {
            times.push(elapsed);
            host += recorded;
        }
        memory = held + 4 * lstm.params().len() as u64;
    }
    // The next size would not reuse these activation buffers.
    drop((lstm, x, dy));
    gpu.release_scratch();
    times.sort();
    let median = times[times.len() / 2].as_secs_f64() * 1e3;
    let flops = size.forward_flops() * if mode == Mode::Training { 3.0 } else { 1.0 };
    let recurrent = match recurrence {
        Recurrence::Sequence => 0,
        _ => t,
    };
    // Per call: counted as recorded (this benchmark is the device's only user). Per step: the
    // same count less the O(1) part of the design (DispatchCounts), over T.
    let fixed = match mode {
        Mode::Inference => d.forward - recurrent,
        Mode::Training => d.forward + d.backward + d.clip - 2 * recurrent,
    };
    let per_call = dispatches as usize;
    let per_step = if recurrent == 0 {
        0
    } else {
        per_call.saturating_sub(fixed).div_ceil(t)
    };
    Ok(Measurement {
        size,
        mode,
        ms: median,
        ms_min: times[0].as_secs_f64() * 1e3,
        us_per_step: median * 1e3 / t as f64,
        gflops: flops / (median * 1e-3) / 1e9,
        recurrence,
        dispatches_per_step: per_step,
        dispatches_per_call: per_call,
        host_us_per_step: host.as_secs_f64() * 1e6 / (iters * t) as f64,
        memory_bytes: memory,
        timing: if timed {
            "gpu-timestamps"
        } else {
            "wall-clock"
        },
        breakdown,
    })
}

/// Deterministic values in [-1, 1) (the data does not matter for timing).
fn pseudo_random(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        .collect()
}

/// The table `wgpu-lstm bench` prints.
pub fn table(rows: &[Measurement]) -> String {
    let mut s = String::from(
        "| size T×B×I×H | mode | recurrence | ms/call (median) | µs/step | GFLOP/s | dispatches/step (per call) | host µs/step | GPU memory | timing |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {:.3} | {:.1} | {:.1} | {} ({}) | {:.1} | {:.1} MiB | {} |\n",
            r.size,
            r.mode,
            r.recurrence.name(),
            r.ms,
            r.us_per_step,
            r.gflops,
            r.dispatches_per_step,
            r.dispatches_per_call,
            r.host_us_per_step,
            r.memory_bytes as f64 / (1 << 20) as f64,
            r.timing
        );
    }
    if rows.iter().any(|r| !r.breakdown.is_empty()) {
        s += "\nGPU time per call by kind of pass (ms):\n\n";
        for r in rows.iter().filter(|r| !r.breakdown.is_empty()) {
            let parts: Vec<String> = r
                .breakdown
                .iter()
                .map(|(l, ms)| format!("{l} {ms:.3}"))
                .collect();
            let (size, mode, recurrence) = (r.size, r.mode, r.recurrence.name());
            s += &format!("- {size} {mode} ({recurrence}): {}\n", parts.join(", "));
        }
    }
    s
}

/// The rows as JSON (the schema `benches/pytorch_baseline.py` writes too).
pub fn json(device: &str, rows: &[Measurement]) -> String {
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "    {{\"size\": \"{}\", \"T\": {}, \"B\": {}, \"I\": {}, \"H\": {}, \"mode\": \"{}\", \"recurrence\": \"{}\", \"ms\": {:.6}, \"ms_min\": {:.6}, \"us_per_step\": {:.3}, \"gflops\": {:.3}, \"dispatches_per_step\": {}, \"dispatches_per_call\": {}, \"host_us_per_step\": {:.3}, \"memory_bytes\": {}, \"timing\": \"{}\", \"breakdown_ms\": {{{}}}}}",
                r.size, r.size.steps, r.size.batch, r.size.input, r.size.hidden, r.mode, r.recurrence.name(), r.ms, r.ms_min, r.us_per_step, r.gflops,
                r.dispatches_per_step, r.dispatches_per_call, r.host_us_per_step, r.memory_bytes,
                r.timing,
                r.breakdown.iter().map(|(l, ms)| format!("\"{l}\": {ms:.6}")).collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    format!(
        "{{\n  \"engine\": \"wgpu-lstm\",\n  \"device\": \"{}\",\n  \"flops\": \"forward 2*T*B*4H*(I+H), training 3x\",\n  \"results\": [\n{}\n  ]\n}}\n",
        device.replace('"', "'"),
        items.join(",\n")
    )
}
