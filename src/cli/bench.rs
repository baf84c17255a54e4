//! `wgpu-lstm bench`: inference and training times at standard sizes.

use std::process::ExitCode;
use wgpu_lstm::bench::{
    json as bench_json, measure, table as bench_table, BenchSize, Mode, SMOKE_SIZES, STANDARD_SIZES,
};
use wgpu_lstm::{Gpu, Recurrence};

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Sizes as TxBxIxH (repeatable) [default: 100x64x512x512 100x64x1024x1024 100x1x512x512
    /// 150x16x256x256 25x64x512x512].
    #[arg(long = "size")]
    sizes: Vec<String>,
    /// Tiny sizes for a smoke run on a software rasteriser.
    #[arg(long)]
    smoke: bool,
    /// Timed calls per size and mode (the median is reported).
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// Untimed calls first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Print JSON (the schema of benches/pytorch_baseline.py) instead of the table.
    #[arg(long)]
    json: bool,
    /// Adapter to use.
    #[arg(long)]
    device: Option<String>,
    /// Tiling of the recurrent step kernels: auto, wide, narrow, split or wide-split (see the
    /// README's portability notes) [default: $WGPU_LSTM_TILING, else auto].
    #[arg(long)]
    tiling: Option<String>,
    /// How the recurrence is recorded: auto, step or sequence (repeatable: every size is timed
    /// with each) [default: $WGPU_LSTM_RECURRENCE, else auto].
    #[arg(long = "recurrence")]
    recurrences: Vec<String>,
}

pub(crate) fn run(a: &BenchArgs) -> wgpu_lstm::Result<ExitCode> {
    let gpu = Gpu::with_adapter(a.device.as_deref())?;
    if let Some(name) = &a.tiling {
        let tiling = wgpu_lstm::StepTiling::parse(name).ok_or_else(|| {
            wgpu_lstm::Error::Invalid(format!(
                "--tiling {name}: expected auto, wide, narrow, split or wide-split"
            ))
        })?;
        gpu.set_step_tiling(tiling);
    }
    let recurrences = a
        .recurrences
        .iter()
        .map(|name| {
            Recurrence::parse(name).ok_or_else(|| {
                wgpu_lstm::Error::Invalid(format!(
                    "--recurrence {name}: expected auto, step or sequence"
                ))
            })
        })
        .collect::<wgpu_lstm::Result<Vec<_>>>()?;
    let sizes: Vec<BenchSize> = if !a.sizes.is_empty() {
        a.sizes
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()?
    } else if a.smoke {
        SMOKE_SIZES.to_vec()
    } else {
        STANDARD_SIZES.to_vec()
    };
    if a.iters == 0 {
        return Err(wgpu_lstm::Error::Invalid(
            "--iters must be at least 1".into(),
        ));
    }
    let info = gpu.info();
    let device = format!(
        "{} ({:?}, {}), step tiling {:?}",
        info.name,
        info.backend,
        info.driver_info,
        gpu.step_tiling()
    );
    let mut rows = Vec::new();
    for size in &sizes {
        // The device's setting when none is given.
        let settings = if recurrences.is_empty() {
            vec![None]
        } else {
            recurrences.iter().map(Some).collect()
        };
        for recurrence in settings {
            if let Some(&recurrence) = recurrence {
                gpu.set_recurrence(recurrence);
            }
            for mode in [Mode::Inference, Mode::Training] {
                let row = measure(&gpu, *size, mode, a.warmup, a.iters)?;
                if !a.json {
                    eprintln!(
                        "{size} {mode} ({}): {:.3} ms",
                        row.recurrence.name(),
                        row.ms
                    );
                }
                rows.push(row);
            }
        }
    }
    if a.json {
        print!("{}", bench_json(&device, &rows));
    } else {
        println!("device: {device}");
        println!("GFLOP/s counts forward 2·T·B·4H·(I+H), training 3× that; median of {} calls after {} warm-up\n", a.iters, a.warmup);
        print!("{}", bench_table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}
