//! The gradient-flow lab: measures, on the GPU, how the gradient of a loss at the last step
//! flows back through time in an LSTM, a GRU and a vanilla RNN of the same size (DESIGN.md §1).
//!
//! The lecture's claims, and what is measured for each:
//! - through the cell states the LSTM's gradient is multiplied by the forget gates, so it
//!   persists where they stay open: ‖∂L/∂c_k‖ and the explicit path t₀ against k;
//! - a vanilla RNN's gradient is multiplied by W_hh and tanh' at every step, so it vanishes when
//!   their norm is below 1: ‖∂L/∂h_k‖ of the RNN;
//! - through the output gate the LSTM's gradient can still explode, at most by the factor
//!   ‖K‖·‖W_o‖₂ per step (K = diag(tanh(c) ⊙ o'), W_o the output-gate block of weight_hh);
//! - the GRU's explicit path ∂h_t/∂h_{t-1} ∋ diag(z_t): its update gate plays the forget
//!   gate's role, so its gradient persists where z stays near 1;
//! - global-norm clipping caps the update whatever the gradient did.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::model::{Cell, GradientProbes, Lstm, LstmConfig, OutputGrads};
use crate::reference::{lstm_forward, LstmParams};
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

/// The experiment's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabConfig {
    /// Timesteps T.
    pub seq_len: usize,
    /// Hidden units H of both models.
    pub hidden: usize,
    /// Input features.
    pub input: usize,
    /// Sequences averaged over (norms are over the batch).
    pub batch: usize,
    /// Added to the bias of the gates that keep the state: the LSTM's forget gate and the
    /// GRU's update gate (large: saturated open, the state persists).
    pub forget_bias: f32,
    /// Multiplies the recurrent weights of both models.
    pub recurrent_scale: f32,
    /// Multiplies the LSTM's output-gate block W_o of weight_hh (the exploding case).
    pub output_gate_scale: f32,
    /// max_norm of the clipping shown at the end.
    pub clip: f32,
    /// Seed of weights, inputs and the loss gradient.
    pub seed: u64,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            seq_len: 100,
            hidden: 32,
            input: 8,
            batch: 4,
            forget_bias: 0.0,
            recurrent_scale: 1.0,
            output_gate_scale: 1.0,
            clip: 1.0,
            seed: 0,
        }
    }
}

/// What the lab measured.
#[derive(Debug, Clone)]
pub struct LabResult {
    /// The settings.
    pub config: LabConfig,
    /// The LSTM's per-step probes.
    pub lstm: GradientProbes,
    /// ‖∂L/∂h_k‖ of the RNN.
    pub rnn_dh_norm: Vec<f32>,
    /// The GRU's probes: ‖∂L/∂h_k‖, the explicit path through the update gates
    /// (`path_norm`) and the mean update-gate product z_{T-1} ⊙ … ⊙ z_{k+1}
    /// (`forget_product_mean`); `dc_norm` is zero (no cell state).
    pub gru: GradientProbes,
    /// ‖K‖ = max over steps, batch and units of |tanh(c_k) ⊙ o_k (1 - o_k)|.
    pub k_norm: f64,
    /// ‖W_o‖₂ of the LSTM (power iteration).
    pub w_o_norm: f64,
    /// ‖W_hh‖₂ of the RNN.
    pub rnn_w_norm: f64,
    /// The LSTM's total gradient norm before clipping, and after.
    pub clip_before: f32,
    /// After `clip_grad_norm(clip)`.
    pub clip_after: f32,
}

/// Per-step factor by which a curve changes going back one step in time: the geometric mean
/// of `v[k] / v[k+1]` over k, i.e. `(v[0] / v[T-1])^(1/(T-1))`. Above 1 the gradient grows
/// backwards (explodes), below 1 it decays (vanishes).
pub fn per_step_rate(v: &[f32]) -> f64 {
    if v.len() < 2 || v[v.len() - 1] == 0.0 {
        return f64::NAN;
    }
    let (first, last) = (v[0] as f64, v[v.len() - 1] as f64);
    (first / last).powf(1.0 / (v.len() - 1) as f64)
}

/// The largest singular value of the row-major `rows × cols` matrix `m` by power iteration.
pub fn spectral_norm(m: &[f64], rows: usize, cols: usize) -> f64 {
    let mut v = vec![1.0 / (cols as f64).sqrt(); cols];
    let mut sigma = 0.0;
    for _ in 0..200 {
        let u: Vec<f64> = (0..rows)
            .map(|r| (0..cols).map(|c| m[r * cols + c] * v[c]).sum())
            .collect();
        let w: Vec<f64> = (0..cols)
            .map(|c| (0..rows).map(|r| m[r * cols + c] * u[r]).sum())
            .collect();
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            return 0.0;
        }
        sigma = norm.sqrt();
        v = w.iter().map(|x| x / norm).collect();
    }
    sigma
}

fn scaled(values: Vec<f32>, scale: f32) -> Vec<f32> {
    values.into_iter().map(|v| v * scale).collect()
}

/// Runs the experiment: both models on the same inputs, a loss at the last step only.
#[cfg(not(target_arch = "wasm32"))]
pub fn run_lab(gpu: &Gpu, c: &LabConfig) -> Result<LabResult> {
    crate::gpu::block(run_lab_async(gpu, c))
}

/// [`run_lab`] as a future: the web's form (the lab page redraws from it).
pub async fn run_lab_async(gpu: &Gpu, c: &LabConfig) -> Result<LabResult> {
    if c.seq_len < 2 || c.hidden == 0 || c.batch == 0 || c.input == 0 {
        return Err(Error::Invalid(
            "the lab needs seq-len ≥ 2 and sizes ≥ 1".into(),
        ));
    }
    let (steps, batch, n_h) = (c.seq_len, c.batch, c.hidden);
    let mut rng = rand::rngs::StdRng::seed_from_u64(c.seed ^ 0x1ab);
    let x: Vec<f32> = (0..steps * batch * c.input)
        .map(|_| rng.random_range(-1.0..=1.0))
        .collect();
    let dh_n: Vec<f32> = (0..batch * n_h)
        .map(|_| rng.random_range(-1.0..=1.0))
        .collect();
    let xt = Tensor::from_slice(gpu, &[steps, batch, c.input], &x)?;
    let dht = Tensor::from_slice(gpu, &[1, batch, n_h], &dh_n)?;
    let grads = OutputGrads {
        dh_n: Some(&dht),
        ..Default::default()
    };

    let lstm = Lstm::new(gpu, LstmConfig::new(c.input, n_h).with_seed(c.seed))?;
    let p = lstm.params();
    let mut w_hh = scaled(p.get_async("weight_hh_l0").await?, c.recurrent_scale);
    for v in &mut w_hh[3 * n_h * n_h..] {
        *v *= c.output_gate_scale;
    }
    p.set("weight_hh_l0", &w_hh)?;
    let mut b_hh = p.get_async("bias_hh_l0").await?;
    b_hh[n_h..2 * n_h]
        .iter_mut()
        .for_each(|b| *b += c.forget_bias);
    p.set("bias_hh_l0", &b_hh)?;
    let out = lstm.forward_train(&xt, None, None)?;
    let cache = out
        .cache
        .as_ref()
        .ok_or_else(|| Error::Invalid("no cache".into()))?;
    let (_, probes) = lstm.backward_probed_async(cache, &grads, false).await?;
    let clip_before = p.clip_grad_norm(c.clip, false)?.total_norm_async().await?;
    let clip_after = p
        .clip_grad_norm(f32::MAX, false)?
        .total_norm_async()
        .await?;

    let rnn = Lstm::new(
        gpu,
        LstmConfig::new(c.input, n_h)
            .with_cell(Cell::Rnn)
            .with_seed(c.seed),
    )?;
    let r = rnn.params();
    let rnn_w = scaled(r.get_async("weight_hh_l0").await?, c.recurrent_scale);
    r.set("weight_hh_l0", &rnn_w)?;
    let rnn_out = rnn.forward_train(&xt, None, None)?;
    let rnn_cache = rnn_out
        .cache
        .as_ref()
        .ok_or_else(|| Error::Invalid("no cache".into()))?;
    let (_, rnn_probes) = rnn.backward_probed_async(rnn_cache, &grads, false).await?;

    let gru = Lstm::new(
        gpu,
        LstmConfig::new(c.input, n_h)
            .with_cell(Cell::Gru)
            .with_seed(c.seed),
    )?;
    let g = gru.params();
    g.set(
        "weight_hh_l0",
        &scaled(g.get_async("weight_hh_l0").await?, c.recurrent_scale),
    )?;
    let mut b_hz = g.get_async("bias_hh_l0").await?;
    b_hz[n_h..2 * n_h]
        .iter_mut()
        .for_each(|b| *b += c.forget_bias);
    g.set("bias_hh_l0", &b_hz)?;
    let gru_out = gru.forward_train(&xt, None, None)?;
    let gru_cache = gru_out
        .cache
        .as_ref()
        .ok_or_else(|| Error::Invalid("no cache".into()))?;
    let (_, gru_probes) = gru.backward_probed_async(gru_cache, &grads, false).await?;

    // ‖K‖ from the f64 reference forward with the same weights (the gates are not read back).
    let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let params = LstmParams {
        input_size: c.input,
        hidden_size: n_h,
        weight_ih: f64s(&p.get_async("weight_ih_l0").await?),
        weight_hh: f64s(&w_hh),
        bias_ih: f64s(&p.get_async("bias_ih_l0").await?),
        bias_hh: f64s(&b_hh),
        weight_hr: None,
    };
    let fwd = lstm_forward(&params, &f64s(&x), steps, batch, None, None);
    let bh = batch * n_h;
    let mut k_norm: f64 = 0.0;
    for t in 0..steps {
        for b in 0..batch {
            for j in 0..n_h {
                let o = fwd.gates[(t * batch + b) * 4 * n_h + 3 * n_h + j];
                let cell = fwd.cs[(t + 1) * bh + b * n_h + j];
                k_norm = k_norm.max((cell.tanh() * o * (1.0 - o)).abs());
            }
        }
    }
    Ok(LabResult {
        config: *c,
        lstm: probes,
        rnn_dh_norm: rnn_probes.dh_norm,
        gru: gru_probes,
        k_norm,
        w_o_norm: spectral_norm(&f64s(&w_hh[3 * n_h * n_h..]), n_h, n_h),
        rnn_w_norm: spectral_norm(&f64s(&rnn_w), n_h, n_h),
        clip_before,
        clip_after,
    })
}

impl LabResult {
    /// One row per step k: every probe.
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "k,lstm_dc_norm,lstm_dh_norm,t0_path_norm,forget_product_mean,rnn_dh_norm,gru_dh_norm,gru_z_path_norm,update_product_mean\n",
        );
        for k in 0..self.rnn_dh_norm.len() {
            let l = &self.lstm;
            let _ = writeln!(
                s,
                "{k},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{:e}",
                l.dc_norm[k],
                l.dh_norm[k],
                l.path_norm[k],
                l.forget_product_mean[k],
                self.rnn_dh_norm[k],
                self.gru.dh_norm[k],
                self.gru.path_norm[k],
                self.gru.forget_product_mean[k]
            );
        }
        s
    }

    /// The text summary: each curve's per-step rate next to the lecture's claims.
    pub fn summary(&self) -> String {
        let c = &self.config;
        let l = &self.lstm;
        let t = self.rnn_dh_norm.len();
        let ratio = |v: &[f32]| v[0] as f64 / v[t - 1] as f64;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "gradient flow, loss on the last step: T = {t}, H = {}, batch {}",
            c.hidden, c.batch
        );
        let _ = writeln!(
            s,
            "settings: forget (LSTM) and update (GRU) gate bias +{}, recurrent scale {}, output-gate scale {}, seed {}",
            c.forget_bias, c.recurrent_scale, c.output_gate_scale, c.seed
        );
        let _ = writeln!(s, "\nper-step rate going back in time (geometric mean of |g_k| / |g_k+1|), and |g_0| / |g_T-1|:");
        for (name, v) in [
            ("LSTM cell path  |dL/dc_k|", &l.dc_norm),
            ("LSTM hidden     |dL/dh_k|", &l.dh_norm),
            ("explicit path t0 (f only)", &l.path_norm),
            ("RNN hidden      |dL/dh_k|", &self.rnn_dh_norm),
            ("GRU hidden      |dL/dh_k|", &self.gru.dh_norm),
            ("GRU path via z  (z only) ", &self.gru.path_norm),
        ] {
            let _ = writeln!(
                s,
                "  {name}: rate {:.4}, end to end {:.3e}",
                per_step_rate(v),
                ratio(v)
            );
        }
        let _ = writeln!(
            s,
            "  mean forget-gate product f_T-1 ⊙ … ⊙ f_1: {:.3e} (t0 vanishes only where the forward pass forgot)",
            l.forget_product_mean[0]
        );
        let _ = writeln!(
            s,
            "  mean update-gate product z_T-1 ⊙ … ⊙ z_1: {:.3e} (the GRU's explicit path ∂h_t/∂h_t-1 ∋ diag(z_t))",
            self.gru.forget_product_mean[0]
        );
        let _ = writeln!(
            s,
            "\nRNN: |W_hh|_2 = {:.3}; its gradient is multiplied by W_hh and tanh' at every step.",
            self.rnn_w_norm
        );
        let bound = self.k_norm * self.w_o_norm;
        let _ = writeln!(
            s,
            "output-gate path: |K| = max|tanh(c) o (1-o)| = {:.4}, |W_o|_2 = {:.3}, bound factor |K|·|W_o|_2 = {:.4} per step;",
            self.k_norm, self.w_o_norm, bound
        );
        let dh_rate = per_step_rate(&l.dh_norm);
        let verdict = if dh_rate > 1.0 {
            format!(
                "explodes: it grows ×{dh_rate:.4} per step going back, {} the bound ×{bound:.4}",
                if dh_rate <= bound {
                    "within"
                } else {
                    "above (the bound covers the output-gate path alone)"
                }
            )
        } else {
            format!("does not explode (×{dh_rate:.4} per step ≤ 1; the bound ×{bound:.4} is an upper limit, not a prediction)")
        };
        let _ = writeln!(s, "  the LSTM's |dL/dh_k| {verdict}");
        let _ = writeln!(
            s,
            "\nclip_grad_norm(max_norm = {}): total gradient norm {:.4e} → {:.4e}{}",
            c.clip,
            self.clip_before,
            self.clip_after,
            if self.clip_before > c.clip {
                " (the update is capped)"
            } else {
                " (below max_norm: unchanged)"
            }
        );
        s
    }

    /// Writes `gradflow.csv` and `summary.txt` into `dir` (created if needed), each
    /// atomically. (The command line adds the plot, `gradflow.svg`.)
    #[cfg(not(target_arch = "wasm32"))]
    pub fn write(&self, dir: &Path) -> Result<()> {
        let io = |source| Error::Io {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        crate::io::write_atomically(&dir.join("gradflow.csv"), self.csv().as_bytes())?;
        crate::io::write_atomically(&dir.join("summary.txt"), self.summary().as_bytes())
    }
}
