//! The recurrent model: `torch.nn.LSTM` (and `nn.RNN`) on the GPU — stacked, bidirectional,
//! variable-length, stateful. The passes themselves are in `forward.rs` and `backward.rs`.

use super::arena::ParamArena;
use super::config::LstmConfig;
use super::outputs::{
    BackwardOutput, DispatchCounts, ForwardCache, ForwardOptions, GradientProbes, LstmOutput,
    OutputGrads,
};
use super::plan::Plan;
use crate::error::{fmt_shape, Error, Result};
use crate::gpu::{check_shape, Gpu, Tensor};
use crate::kernels::sequence::{self, SequenceCopy};
use crate::kernels::{reduce, Recurrence};
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An LSTM on the GPU, equivalent to `torch.nn.LSTM` with the same [`LstmConfig`] (or to
/// `nn.RNN` with [`Cell::Rnn`](crate::Cell::Rnn)).
///
/// Parameters live in one arena with PyTorch's names, shapes and `state_dict` order
/// (`weight_ih_l0 [4H, I]`, `weight_hh_l0 [4H, H]`, `bias_ih_l0 [4H]`, `bias_hh_l0 [4H]`,
/// `…_reverse`, `…_l1`, …), gates in the order i, f, g, o.
pub struct Lstm {
    pub(super) gpu: Gpu,
    pub(super) config: LstmConfig,
    pub(super) arena: ParamArena,
    /// Identifies the model to its forward caches (a counter: addresses get reused).
    pub(super) id: u64,
    /// Training forward passes so far: each draws a new dropout mask.
    pub(super) dropout_calls: AtomicU64,
}

/// The id of the next model made in this process.
static NEXT_MODEL_ID: AtomicU64 = AtomicU64::new(1);

impl Lstm {
    /// Creates the LSTM with PyTorch's initialisation: every parameter drawn from
    /// U(-1/√H, 1/√H), seeded by `config.seed`.
    pub fn new(gpu: &Gpu, config: LstmConfig) -> Result<Lstm> {
        Lstm::with_extra_params(gpu, config, &[])
    }

    /// Like [`Lstm::new`], with further tensors (e.g. an output layer) appended to the same
    /// parameter arena, so that one clip and one optimizer step cover the whole model. They are
    /// initialised like the LSTM's and appear in [`Lstm::state_dict`] under their own names.
    pub fn with_extra_params(
        gpu: &Gpu,
        config: LstmConfig,
        extra: &[(String, Vec<usize>)],
    ) -> Result<Lstm> {
        config.validate()?;
        let mut tensors = config.parameter_shapes();
        tensors.extend_from_slice(extra);
        let arena = ParamArena::new(gpu, &tensors)?;
        let bound = 1.0 / (config.hidden_size as f32).sqrt();
        let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
        let init: Vec<f32> = (0..arena.len())
            .map(|_| rng.random_range(-bound..=bound))
            .collect();
        gpu.scoped(|| {
            gpu.queue()
                .write_buffer(arena.params_buffer(), 0, bytemuck::cast_slice(&init));
            Ok(())
        })?;
        Ok(Lstm {
            gpu: gpu.clone(),
            config,
            arena,
            id: NEXT_MODEL_ID.fetch_add(1, Ordering::Relaxed),
            dropout_calls: AtomicU64::new(0),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LstmConfig {
        &self.config
    }

    /// Sets the count of training forward passes so far, from which dropout masks are drawn
    /// (a resumed run sets it to its step count to redraw the masks of the run that never
    /// stopped).
    pub fn set_training_calls(&self, calls: u64) {
        self.dropout_calls.store(calls, Ordering::Relaxed);
    }

    /// The parameter and gradient arena (get/set parameters by PyTorch name, gradients, clip).
    pub fn params(&self) -> &ParamArena {
        &self.arena
    }

    /// The context the model lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Inference from `h0` (`[L·D, B, R]`), `c0` (`[L·D, B, H]`), zeros when `None`; keeps no
    /// activations.
    pub fn forward(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
    ) -> Result<LstmOutput> {
        self.run(x, &ForwardOptions::states(h0, c0))
    }

    /// Training forward: like [`Lstm::forward`], and keeps what [`Lstm::backward`] needs in
    /// [`LstmOutput::cache`].
    pub fn forward_train(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
    ) -> Result<LstmOutput> {
        let train = ForwardOptions {
            train: true,
            ..ForwardOptions::states(h0, c0)
        };
        self.run(x, &train)
    }

    /// The recurrence a call over `steps` × `batch` takes on this model's device (the device's
    /// [`Recurrence`] setting, auto resolved for these sizes) and the dispatches per layer and
    /// direction it records.
    pub fn dispatch_counts(
        &self,
        steps: usize,
        batch: usize,
    ) -> Result<(Recurrence, DispatchCounts)> {
        let plan = Plan::new(&self.config, &self.arena, steps, batch)?;
        let (recurrence, forward, backward) = plan.recurrence_dispatches(&self.gpu)?;
        Ok((
            recurrence,
            DispatchCounts::with_recurrence(&self.config, forward, backward),
        ))
    }

    /// The forward pass over `x` (`[T, B, I]`, or `[B, T, I]` batch-first) with all options.
    ///
    /// Per layer and direction it records one GEMM for the input projection of all T·B rows and
    /// one fused dispatch per timestep (two with projections); everything goes into one encoder
    /// and one submit. For streaming, pass a call's `h_n`, `c_n` as the next call's `h0`, `c0`:
    /// the state stays on the GPU.
    pub fn run(&self, x: &Tensor, opts: &ForwardOptions<'_>) -> Result<LstmOutput> {
        self.run_impl(x, opts)
    }

    /// Backpropagation through time from the gradients of the outputs. Writes the parameter
    /// gradients to the gradient arena (added to what it holds when `accumulate`, else
    /// overwriting it) and returns the input gradients.
    ///
    /// Per layer and direction (top layer first): T + 1 fused step dispatches in the reverse of
    /// the forward order (2T + 1 with projections), then `dW_ih`, `dW_hh`, `dW_hr` and `dx` as
    /// GEMMs over all T·B rows and the bias gradients as one column sum. One submit. Uses the
    /// parameters as they are now: change them only after `backward`.
    pub fn backward(
        &self,
        cache: &ForwardCache,
        grads: &OutputGrads<'_>,
        accumulate: bool,
    ) -> Result<BackwardOutput> {
        self.backward_impl(cache, grads, accumulate, None)
    }

    /// [`Lstm::backward`] that also measures how the gradient flows back through time (the
    /// gradient-flow lab): for every step k of the top layer's forward direction, the norms
    /// over the batch of ∂L/∂h_k and ∂L/∂c_k, of the explicit cell path
    /// t₀ = ∂L/∂h_{T-1} ⊙ o_{T-1} ⊙ tanh'(c_{T-1}) ⊙ f_{T-1} ⊙ … ⊙ f_{k+1}, and the mean of the
    /// forget-gate product f_{T-1} ⊙ … ⊙ f_{k+1}. Recorded by the backward kernel and reduced by
    /// one norm dispatch on the GPU; read back once.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn backward_probed(
        &self,
        cache: &ForwardCache,
        grads: &OutputGrads<'_>,
        accumulate: bool,
    ) -> Result<(BackwardOutput, GradientProbes)> {
        crate::gpu::block(self.backward_probed_async(cache, grads, accumulate))
    }

    /// [`Lstm::backward_probed`] as a future (for the web).
    pub async fn backward_probed_async(
        &self,
        cache: &ForwardCache,
        grads: &OutputGrads<'_>,
        accumulate: bool,
    ) -> Result<(BackwardOutput, GradientProbes)> {
        let (steps, bh) = (cache.steps, cache.batch * self.config.hidden_size);
        let gpu = &self.gpu;
        let probes = gpu.storage_buffer("gradient probes [4, T, B, H]", 4 * steps * bh)?;
        let out = self.backward_impl(cache, grads, accumulate, Some(&probes))?;
        let stats = gpu.record("gradient probe norms", |encoder| {
            let stats = Arc::new(gpu.storage_buffer("probe norms [4·T, 2]", 8 * steps)?);
            let mut pass = gpu.compute_pass(encoder, "probes");
            reduce::encode_row_norms(gpu, &mut pass, &probes, 4 * steps, bh, &stats)?;
            Ok(Tensor::view(gpu, stats, 0, &[4, steps, 2]))
        })?;
        let v = stats.to_vec_async().await?;
        let column =
            |row: usize, col: usize| (0..steps).map(|k| v[(row * steps + k) * 2 + col]).collect();
        Ok((
            out,
            GradientProbes {
                dh_norm: column(0, 0),
                dc_norm: column(1, 0),
                path_norm: column(2, 0),
                forget_product_mean: column(3, 1),
            },
        ))
    }

    /// Records a sequence copy into a new buffer and returns it.
    pub(super) fn sequence_copy(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        (src, src_offset): (&wgpu::Buffer, usize),
        [steps, batch, features]: [usize; 3],
        (src_batch_first, dst_batch_first): (bool, bool),
        lengths: Option<&wgpu::Buffer>,
        dropout: Option<(f32, u32)>,
    ) -> Result<Arc<wgpu::Buffer>> {
        // Every element is written (padding as zeros where lengths are given).
        let dst = self.gpu.scratch("sequence", steps * batch * features)?;
        sequence::encode(
            &self.gpu,
            pass,
            &SequenceCopy {
                steps,
                batch,
                features,
                src,
                src_offset,
                src_batch_first,
                dst: &dst,
                dst_batch_first,
                lengths,
                dropout,
            },
        )?;
        Ok(dst)
    }

    /// Checks a sequence tensor `[T, B, F]` (`[B, T, F]` batch-first) and returns (T, B).
    pub(super) fn sequence_dims(
        &self,
        x: &Tensor,
        name: &str,
        features: usize,
    ) -> Result<(usize, usize)> {
        self.same_device(x, name)?;
        let shape = x.shape();
        let layout = if self.config.batch_first {
            "[B, T, "
        } else {
            "[T, B, "
        };
        if shape.len() != 3 || shape[2] != features || shape.contains(&0) {
            return Err(Error::Shape {
                tensor: name.into(),
                expected: format!("{layout}{features}] with T, B ≥ 1"),
                given: fmt_shape(shape),
            });
        }
        Ok(if self.config.batch_first {
            (shape[1], shape[0])
        } else {
            (shape[0], shape[1])
        })
    }

    pub(super) fn same_device(&self, t: &Tensor, name: &str) -> Result<()> {
        if !t.gpu().same(&self.gpu) {
            return Err(Error::Invalid(format!(
                "tensor `{name}` lives on another Gpu context than the model"
            )));
        }
        Ok(())
    }

    /// Checks an optional `[L·D, B, width]` state tensor.
    pub(super) fn check_state(
        &self,
        t: Option<&Tensor>,
        name: &str,
        batch: usize,
        width: usize,
    ) -> Result<()> {
        if let Some(t) = t {
            self.same_device(t, name)?;
            let c = &self.config;
            check_shape(
                name,
                t.shape(),
                &[c.num_layers * c.directions(), batch, width],
            )?;
        }
        Ok(())
    }
}

pub(super) fn check_lengths(lengths: Option<&[usize]>, steps: usize, batch: usize) -> Result<()> {
    let Some(lengths) = lengths else {
        return Ok(());
    };
    if lengths.len() != batch {
        return Err(Error::Shape {
            tensor: "lengths".into(),
            expected: format!("[{batch}]"),
            given: format!("[{}]", lengths.len()),
        });
    }
    if let Some((b, &len)) = lengths
        .iter()
        .enumerate()
        .find(|(_, &l)| l == 0 || l > steps)
    {
        return Err(Error::Invalid(format!(
            "lengths[{b}] = {len}: every length must be in 1..={steps} (T)"
        )));
    }
    Ok(())
}

/// The dropout seed of layer `layer`'s input in training call `call`.
pub(super) fn dropout_seed_for(seed: u64, call: u64, layer: usize) -> u32 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        seed ^ call.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ layer as u64,
    );
    rng.random()
}
