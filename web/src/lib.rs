//! The lab page's engine: wgpu-lstm on the browser's WebGPU, exported to JavaScript.
//!
//! [`Lab`] runs the gradient-flow experiment (LSTM, GRU and RNN side by side) and makes
//! [`CharModel`]s, character models trained in the page. Every call that reads the GPU returns
//! a promise; errors reject it with the engine's message (a lost device included), which the
//! page shows in words. `web/main.js` draws what comes back.

use js_sys::{Float32Array, Object, Promise, Reflect};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use wgpu_lstm::lab::{per_step_rate, run_lab_async, LabConfig, LabResult};
use wgpu_lstm::train::{step_rng, CharCorpus, Task, TrainConfig, Trainer, BUILTIN_TEXT};
use wgpu_lstm::{Cell, Gpu};

/// The engine's error as a JavaScript exception (the message is what the page shows).
fn js_error(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

/// Sets `object[key] = value`.
fn set(object: &Object, key: &str, value: impl Into<JsValue>) {
    // Setting a property on a plain object cannot fail.
    let _ = Reflect::set(object, &key.into(), &value.into());
}

/// The browser's WebGPU device and the experiments on it.
#[wasm_bindgen]
pub struct Lab {
    gpu: Gpu,
}

#[wasm_bindgen]
impl Lab {
    /// Opens the browser's WebGPU adapter. Rejects with a message when there is none.
    pub async fn open() -> Result<Lab, JsValue> {
        let gpu = Gpu::new_async().await.map_err(js_error)?;
        Ok(Lab { gpu })
    }

    /// The backend in words ("WebGPU" in a browser) and the adapter's name where the browser
    /// gives one (most hide it: the page asks `navigator.gpu` for its vendor instead).
    pub fn adapter(&self) -> String {
        let info = self.gpu.info();
        let backend = match info.backend {
            wgpu_lstm::wgpu::Backend::BrowserWebGpu => "WebGPU".to_string(),
            other => format!("{other:?}"),
        };
        match info.name.trim() {
            "" => backend,
            name => format!("{name}, {backend}"),
        }
    }

    /// Destroys the device, as a driver reset or a lost GPU would: for the page test, which
    /// checks that the page then says so.
    pub fn lose_device(&self) {
        self.gpu.device().destroy();
    }

    /// Runs the gradient-flow lab. Resolves to `{ lstm_dc, lstm_dh, lstm_t0, rnn_dh, gru_dh,
    /// gru_z, rates: { … }, clip_before, clip_after, summary }`, each curve a `Float32Array`
    /// over k = 0 … T-1, the rates the per-step factors of [`per_step_rate`].
    pub fn gradflow(
        &self,
        seq_len: usize,
        forget_bias: f32,
        recurrent_scale: f32,
        output_gate_scale: f32,
    ) -> Promise {
        let gpu = self.gpu.clone();
        let config = LabConfig {
            seq_len,
            forget_bias,
            recurrent_scale,
            output_gate_scale,
            ..LabConfig::default()
        };
        future_to_promise(async move {
            let result = run_lab_async(&gpu, &config).await.map_err(js_error)?;
            Ok(lab_object(&result).into())
        })
    }

    /// A character model of `cell` (`lstm`, `gru` or `rnn`) on the built-in text, ready to
    /// train in the page (H = 64, batch 16, 32 characters per sequence, Adam, clip 1).
    pub fn char_model(&self, cell: &str) -> Result<CharModel, JsValue> {
        let cell = match cell {
            "lstm" => Cell::Lstm,
            "gru" => Cell::Gru,
            "rnn" => Cell::Rnn,
            other => return Err(js_error(format!("unknown cell `{other}`"))),
        };
        let corpus = CharCorpus::new(BUILTIN_TEXT).map_err(js_error)?;
        let config = TrainConfig {
            cell,
            batch: 16,
            seq_len: 32,
            ..TrainConfig::default()
        };
        let trainer =
            Trainer::new(&self.gpu, config, Task::Chars(corpus.clone()), 64).map_err(js_error)?;
        Ok(CharModel {
            trainer: Rc::new(RefCell::new(Some(trainer))),
            corpus: Rc::new(corpus),
        })
    }
}

/// What the page draws and prints of one lab run.
fn lab_object(r: &LabResult) -> Object {
    let out = Object::new();
    let curves = [
        ("lstm_dc", &r.lstm.dc_norm),
        ("lstm_dh", &r.lstm.dh_norm),
        ("lstm_t0", &r.lstm.path_norm),
        ("rnn_dh", &r.rnn_dh_norm),
        ("gru_dh", &r.gru.dh_norm),
        ("gru_z", &r.gru.path_norm),
    ];
    let rates = Object::new();
    for (name, values) in curves {
        set(&out, name, Float32Array::from(values.as_slice()));
        set(&rates, name, per_step_rate(values));
    }
    set(&out, "rates", rates);
    set(&out, "clip_before", r.clip_before);
    set(&out, "clip_after", r.clip_after);
    set(&out, "summary", r.summary());
    out
}

/// A character model training in the page.
#[wasm_bindgen]
pub struct CharModel {
    /// Taken out while a call runs, so that a second call made before the first resolved is
    /// an error instead of a conflicting borrow.
    trainer: Rc<RefCell<Option<Trainer>>>,
    corpus: Rc<CharCorpus>,
}

/// Takes the trainer for one call, or fails if another call still holds it.
fn take(slot: &Rc<RefCell<Option<Trainer>>>) -> Result<Trainer, JsValue> {
    slot.borrow_mut()
        .take()
        .ok_or_else(|| js_error("the model is busy with an earlier call"))
}

#[wasm_bindgen]
impl CharModel {
    /// Trains `steps` steps (all queued on the GPU, one readback at the end). Resolves to
    /// `{ step, loss, grad_norm, clip_rate }`, the mean over those steps.
    pub fn train(&self, steps: usize) -> Promise {
        let slot = self.trainer.clone();
        future_to_promise(async move {
            let mut trainer = take(&slot)?;
            let result = train_steps(&mut trainer, steps).await;
            let step = trainer.step_count();
            *slot.borrow_mut() = Some(trainer);
            let metrics = result.map_err(js_error)?;
            let out = Object::new();
            set(&out, "step", step as f64);
            set(&out, "loss", metrics.loss);
            set(&out, "grad_norm", metrics.grad_norm);
            set(&out, "clip_rate", metrics.clip_rate);
            Ok(out.into())
        })
    }

    /// Samples `length` characters after a newline at `temperature`. Resolves to the text.
    pub fn sample(&self, length: usize, temperature: f32) -> Promise {
        let (slot, corpus) = (self.trainer.clone(), self.corpus.clone());
        future_to_promise(async move {
            let trainer = take(&slot)?;
            let prompt = corpus.vocab.binary_search(&'\n').map_or(0, |i| i as u32);
            let mut rng = step_rng(trainer.step_count(), u64::MAX);
            let tokens = trainer
                .model()
                .generate_async(&[prompt], length, temperature, &mut rng)
                .await;
            *slot.borrow_mut() = Some(trainer);
            let text: String = tokens
                .map_err(js_error)?
                .into_iter()
                .map(|t| corpus.vocab[t as usize])
                .collect();
            Ok(text.into())
        })
    }

    /// The vocabulary, as one string of its characters.
    pub fn vocab(&self) -> String {
        self.corpus.vocab.iter().collect()
    }
}

async fn train_steps(
    trainer: &mut Trainer,
    steps: usize,
) -> wgpu_lstm::Result<wgpu_lstm::train::Metrics> {
    for _ in 0..steps.max(1) {
        trainer.step()?;
    }
    trainer.metrics_async().await
}
