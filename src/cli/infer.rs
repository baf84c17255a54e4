//! `wgpu-lstm infer`: a PyTorch state dict on inputs from a file, optionally backward and
//! clipping; the results as safetensors.

use super::options::CellArgs;
use std::path::PathBuf;
use std::process::ExitCode;
use wgpu_lstm::io::{read_tensors, write_tensors, HostTensor, TensorMap};
use wgpu_lstm::{ForwardOptions, Gpu, Lstm, LstmConfig, OutputGrads, Tensor};

#[derive(clap::Args)]
pub(crate) struct InferArgs {
    /// The state dict: `safetensors.torch.save_file(lstm.state_dict(), PATH)`.
    #[arg(long)]
    weights: PathBuf,
    /// Inputs: `x` [T,B,I] float32 (or [B,T,I] with --batch-first), optional `h0`, `c0`
    /// [L·D,B,H], optional `lengths` [B] (int32 or int64).
    #[arg(long)]
    input: PathBuf,
    /// Where to write `y`, `h_n`, `c_n` (and the gradients). Written atomically.
    #[arg(long)]
    output: PathBuf,
    /// Gradients of the outputs: `dy` (shaped like y), optional `dh_n`, `dc_n`. Runs the backward
    /// pass and writes `grad.x`, `grad.h0`, `grad.c0` and `grad.<parameter>`.
    #[arg(long)]
    grad_output: Option<PathBuf>,
    /// With --grad-output: clip the gradients to this global L2 norm and write `clip.total_norm`
    /// and `clipped.<parameter>`.
    #[arg(long, requires = "grad_output")]
    clip: Option<f32>,
    /// Sequences are [B, T, F] (the module's batch_first=True).
    #[arg(long)]
    batch_first: bool,
    /// The cell and proj_size are read from the state dict (given, they must match it); the
    /// RNN's nonlinearity is not in it.
    #[command(flatten)]
    cell: CellArgs,
    /// Adapter to use: a case-insensitive part of its name (see `devices`).
    #[arg(long)]
    device: Option<String>,
}

pub(crate) fn run(a: &InferArgs) -> wgpu_lstm::Result<ExitCode> {
    let gpu = Gpu::with_adapter(a.device.as_deref())?;
    let weights = read_tensors(&a.weights)?;
    let source = a.weights.display().to_string();
    let config = LstmConfig::from_state_dict(&weights)?.with_batch_first(a.batch_first);
    let lstm = Lstm::from_state_dict_with(&gpu, &weights, a.cell.apply_to(config, &source)?)?;
    // Names a cell without a cell state does not take (nn.GRU and nn.RNN have no c).
    let has_c = lstm.config().cell.has_cell_state();
    let inputs = read_tensors(&a.input)?;
    check_names(&inputs, &a.input, &["x", "h0", "c0", "lengths"], has_c)?;
    let grad_file = match &a.grad_output {
        Some(path) => {
            let g = read_tensors(path)?;
            check_names(&g, path, &["dy", "dh_n", "dc_n"], has_c)?;
            if g.is_empty() {
                return Err(wgpu_lstm::Error::Invalid(format!(
                    "{}: no gradients (expected dy, and optionally dh_n{})",
                    path.display(),
                    if has_c { ", dc_n" } else { "" }
                )));
            }
            Some(g)
        }
        None => None,
    };
    let upload = |map: &TensorMap, key: &str| -> wgpu_lstm::Result<Option<Tensor>> {
        map.get(key)
            .map(|t| Tensor::from_slice(&gpu, &t.shape, t.as_f32(key)?))
            .transpose()
    };
    let x = upload(&inputs, "x")?.ok_or_else(|| {
        wgpu_lstm::Error::Invalid(format!("{}: no tensor `x`", a.input.display()))
    })?;
    let (h0, c0) = (upload(&inputs, "h0")?, upload(&inputs, "c0")?);
    let lengths = inputs
        .get("lengths")
        .map(|t| t.as_indices("lengths"))
        .transpose()?;
    let out = lstm.run(
        &x,
        &ForwardOptions {
            h0: h0.as_ref(),
            c0: c0.as_ref(),
            lengths: lengths.as_deref(),
            train: grad_file.is_some(),
        },
    )?;
    let mut results = TensorMap::new();
    let put = |results: &mut TensorMap, name: String, t: &Tensor| -> wgpu_lstm::Result<()> {
        results.insert(name, HostTensor::f32(t.shape(), t.to_vec()?));
        Ok(())
    };
    // nn.GRU and nn.RNN have no cell state: no c_n, c0 or their gradients.
    let lstm_cell = has_c;
    put(&mut results, "y".into(), &out.y)?;
    put(&mut results, "h_n".into(), &out.h_n)?;
    if lstm_cell {
        put(&mut results, "c_n".into(), &out.c_n)?;
    }
    if let (Some(g), Some(cache)) = (&grad_file, &out.cache) {
        let (dy, dh_n, dc_n) = (upload(g, "dy")?, upload(g, "dh_n")?, upload(g, "dc_n")?);
        let grads = OutputGrads {
            dy: dy.as_ref(),
            dh_n: dh_n.as_ref(),
            dc_n: dc_n.as_ref(),
        };
        let back = lstm.backward(cache, &grads, false)?;
        put(&mut results, "grad.x".into(), &back.dx)?;
        put(&mut results, "grad.h0".into(), &back.dh0)?;
        if lstm_cell {
            put(&mut results, "grad.c0".into(), &back.dc0)?;
        }
        let names = lstm.params().names();
        for n in &names {
            put(
                &mut results,
                format!("grad.{n}"),
                &lstm.params().grad_tensor(n)?,
            )?;
        }
        if let Some(max_norm) = a.clip {
            let clip = lstm.params().clip_grad_norm(max_norm, false)?;
            results.insert(
                "clip.total_norm".into(),
                HostTensor::f32(&[1], vec![clip.total_norm()?]),
            );
            for n in &names {
                put(
                    &mut results,
                    format!("clipped.{n}"),
                    &lstm.params().grad_tensor(n)?,
                )?;
            }
        }
    }
    write_tensors(&a.output, &results)?;
    let c = lstm.config();
    let extra = match c.cell {
        wgpu_lstm::Cell::Lstm if c.proj_size > 0 => format!(", proj_size={}", c.proj_size),
        wgpu_lstm::Cell::Rnn => format!(", nonlinearity='{:?}'", c.nonlinearity).to_lowercase(),
        _ => String::new(),
    };
    println!(
        "{}: nn.{}({}, {}, num_layers={}, bias={}, bidirectional={}{extra}) on x {:?} → {} tensors in {}",
        gpu.info().name,
        c.cell.name(),
        c.input_size,
        c.hidden_size,
        c.num_layers,
        c.bias,
        c.bidirectional,
        x.shape(),
        results.len(),
        a.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Fails unless every tensor of `file` is one of `known` (`c0`, `dc_n` only for cells with a
/// cell state): a typo must not pass as an absent tensor.
fn check_names(
    file: &TensorMap,
    path: &std::path::Path,
    known: &[&str],
    has_c: bool,
) -> wgpu_lstm::Result<()> {
    let takes = |k: &str| known.contains(&k) && (has_c || !k.starts_with("c0") && k != "dc_n");
    match file.keys().find(|k| !takes(k)) {
        Some(name) => {
            let expected: Vec<&str> = known.iter().copied().filter(|k| takes(k)).collect();
            let why = if known.contains(&name.as_str()) {
                " (this cell has no cell state)"
            } else {
                ""
            };
            Err(wgpu_lstm::Error::Invalid(format!(
                "{}: unexpected tensor `{name}`{why}; expected {}",
                path.display(),
                expected.join(", ")
            )))
        }
        None => Ok(()),
    }
}
