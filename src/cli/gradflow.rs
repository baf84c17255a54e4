//! `wgpu-lstm gradflow`: the gradient-flow lab's CSV, SVG and summary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use wgpu_lstm::lab::{run_lab, LabConfig, LabResult};
use wgpu_lstm::Gpu;

#[derive(clap::Args)]
pub(crate) struct GradflowArgs {
    /// Timesteps T.
    #[arg(long, default_value_t = 100)]
    seq_len: usize,
    /// Hidden units of both models.
    #[arg(long, default_value_t = 32)]
    hidden: usize,
    /// Added to the LSTM's forget-gate bias (e.g. 5: gates saturated open).
    #[arg(long, default_value_t = 0.0)]
    forget_bias: f32,
    /// Multiplies the recurrent weights of both models.
    #[arg(long, default_value_t = 1.0)]
    recurrent_scale: f32,
    /// Multiplies the LSTM's output-gate block W_o of weight_hh (the exploding case).
    #[arg(long, default_value_t = 1.0)]
    output_gate_scale: f32,
    /// max_norm of the clipping demonstrated at the end.
    #[arg(long, default_value_t = 1.0)]
    clip: f32,
    /// Seed of weights, inputs and the loss gradient.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder for gradflow.csv, gradflow.svg and summary.txt.
    #[arg(long, default_value = "gradflow")]
    out: PathBuf,
    /// Adapter to use.
    #[arg(long)]
    device: Option<String>,
}

pub(crate) fn run(a: &GradflowArgs) -> wgpu_lstm::Result<ExitCode> {
    let gpu = Gpu::with_adapter(a.device.as_deref())?;
    let config = LabConfig {
        seq_len: a.seq_len,
        hidden: a.hidden,
        forget_bias: a.forget_bias,
        recurrent_scale: a.recurrent_scale,
        output_gate_scale: a.output_gate_scale,
        clip: a.clip,
        seed: a.seed,
        ..LabConfig::default()
    };
    let start = Instant::now();
    let result = run_lab(&gpu, &config)?;
    result.write(&a.out)?;
    wgpu_lstm::io::write_atomically(&a.out.join("gradflow.svg"), svg(&result)?.as_bytes())?;
    print!("{}", result.summary());
    println!(
        "\nwrote {0}/gradflow.csv, {0}/gradflow.svg, {0}/summary.txt in {1:.1} s on {2}",
        a.out.display(),
        start.elapsed().as_secs_f64(),
        gpu.info().name
    );
    Ok(ExitCode::SUCCESS)
}

/// The lab's plot as SVG text: log-scale norms against k.
fn svg(result: &LabResult) -> wgpu_lstm::Result<String> {
    use plotters::prelude::*;
    let plot_err = |e: String| wgpu_lstm::Error::Invalid(format!("plotting failed: {e}"));
    let t = result.rnn_dh_norm.len();
    let l = &result.lstm;
    let curves: [(&str, &Vec<f32>, RGBColor); 5] = [
        (
            "LSTM cell path |dL/dc_k|",
            &l.dc_norm,
            RGBColor(31, 119, 180),
        ),
        ("LSTM hidden |dL/dh_k|", &l.dh_norm, RGBColor(44, 160, 44)),
        ("explicit path t0", &l.path_norm, RGBColor(255, 127, 14)),
        ("RNN |dL/dh_k|", &result.rnn_dh_norm, RGBColor(214, 39, 40)),
        (
            "GRU |dL/dh_k|",
            &result.gru.dh_norm,
            RGBColor(148, 103, 189),
        ),
    ];
    // Log axis: zeros and underflows sit on the floor.
    let floor = 1e-30f64;
    let values = curves
        .iter()
        .flat_map(|(_, v, _)| v.iter())
        .map(|&v| (v as f64).max(floor));
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = (lo / 2.0, (hi * 2.0).max(lo * 10.0));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Gradient of a loss at step {} flowing back to step k",
                    t - 1
                ),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..(t - 1) as f64, (lo..hi).log_scale())
            .map_err(|e| plot_err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("timestep k")
            .y_desc("norm (log scale)")
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(|e| plot_err(e.to_string()))?;
        for (name, v, color) in curves {
            let points = v
                .iter()
                .enumerate()
                .map(|(k, &y)| (k as f64, (y as f64).max(floor)));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| plot_err(e.to_string()))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| plot_err(e.to_string()))?;
        root.present().map_err(|e| plot_err(e.to_string()))?;
    }
    Ok(svg)
}
