// The lab page: the engine (wasm, ./pkg) computes, this file draws. `body[data-ready]` is 0
// while computing and 1 after each redraw; `body[data-error]` holds a failure's message.
import init, { Lab } from "./pkg/wgpu_lstm_web.js";

const $ = (id) => document.getElementById(id);
const body = document.body;
const status = $("status");

const CURVES = [
  { key: "lstm_dc", label: "LSTM ‖∂L/∂c_k‖", color: "#1f77b4" },
  { key: "lstm_dh", label: "LSTM ‖∂L/∂h_k‖", color: "#17becf" },
  { key: "lstm_t0", label: "LSTM t₀ (forget-gate path)", color: "#2ca02c" },
  { key: "rnn_dh", label: "RNN ‖∂L/∂h_k‖", color: "#d62728" },
  { key: "gru_dh", label: "GRU ‖∂L/∂h_k‖", color: "#9467bd" },
  { key: "gru_z", label: "GRU update-gate path", color: "#ff7f0e" },
];

function fail(message) {
  status.textContent = message;
  status.className = "error";
  body.dataset.error = message;
}

function describe(error) {
  const text = String(error && error.message ? error.message : error);
  if (/lost/i.test(text)) {
    return `The GPU device was lost (${text}). Reload the page to start again.`;
  }
  return `The engine failed: ${text}`;
}

// ---- plotting: log-scale curves on a canvas ----

function plotLog(canvas, series, xLabel) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  const pad = { left: 64, right: 12, top: 12, bottom: 36 };
  ctx.fillStyle = "#fcfcfc";
  ctx.fillRect(0, 0, width, height);
  const notes = [];
  let lo = Infinity, hi = -Infinity, n = 1;
  for (const s of series) {
    n = Math.max(n, s.values.length);
    let hidden = 0;
    for (const v of s.values) {
      if (v > 0 && Number.isFinite(v)) {
        lo = Math.min(lo, Math.log10(v));
        hi = Math.max(hi, Math.log10(v));
      } else {
        hidden++;
      }
    }
    if (hidden > 0) {
      notes.push(`${s.label}: ${hidden} of ${s.values.length} values are 0 or not finite (underflow or overflow), not drawn`);
    }
  }
  if (!Number.isFinite(lo)) { lo = -1; hi = 1; }
  lo = Math.floor(lo); hi = Math.max(Math.ceil(hi), lo + 1);
  const x = (k) => pad.left + (k / Math.max(n - 1, 1)) * (width - pad.left - pad.right);
  const y = (v) => pad.top + (1 - (Math.log10(v) - lo) / (hi - lo)) * (height - pad.top - pad.bottom);
  ctx.strokeStyle = "#ddd";
  ctx.fillStyle = "#444";
  ctx.font = "12px sans-serif";
  const stride = Math.ceil((hi - lo) / 10);
  for (let e = lo; e <= hi; e += stride) {
    const py = y(10 ** e);
    ctx.beginPath(); ctx.moveTo(pad.left, py); ctx.lineTo(width - pad.right, py); ctx.stroke();
    ctx.fillText(`1e${e}`, 8, py + 4);
  }
  ctx.fillText(xLabel, width / 2 - 100, height - 8);
  ctx.fillText("0", pad.left, height - 20);
  ctx.fillText(String(n - 1), width - pad.right - 24, height - 20);
  series.forEach((s, i) => {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let drawing = false;
    s.values.forEach((v, k) => {
      if (!(v > 0 && Number.isFinite(v))) { drawing = false; return; }
      if (drawing) ctx.lineTo(x(k), y(v)); else ctx.moveTo(x(k), y(v));
      drawing = true;
    });
    ctx.stroke();
  });
  // The legend on a box of its own, over the curves.
  const legend = { x: width - pad.right - 240, y: pad.top + 4 };
  ctx.fillStyle = "rgba(255, 255, 255, 0.9)";
  ctx.fillRect(legend.x - 6, legend.y, 240, 8 + 16 * series.length);
  series.forEach((s, i) => {
    ctx.fillStyle = s.color;
    ctx.fillRect(legend.x, legend.y + 8 + 16 * i, 14, 3);
    ctx.fillText(s.label, legend.x + 20, legend.y + 14 + 16 * i);
  });
  return notes;
}

// ---- the gradient-flow panel ----

const SLIDERS = ["seq-len", "forget-bias", "recurrent-scale", "output-gate-scale"];
let lab = null;
let adapterName = "";
let running = false;
let again = false;

function settings() {
  const v = Object.fromEntries(SLIDERS.map((id) => [id, Number($(id).value)]));
  return [v["seq-len"], v["forget-bias"], v["recurrent-scale"], v["output-gate-scale"]];
}

async function redraw() {
  if (running) { again = true; return; }
  running = true;
  body.dataset.ready = "0";
  try {
    do {
      again = false;
      const start = performance.now();
      const r = await lab.gradflow(...settings());
      const ms = performance.now() - start;
      const series = CURVES.map((c) => ({ ...c, values: Array.from(r[c.key]) }));
      const notes = plotLog($("flow-plot"), series, "time step k (the loss is on the last step)");
      const rate = (v) => (Number.isFinite(v) ? `×${v.toFixed(4)} per step` : "not measurable (the curve under- or overflowed)");
      const rates = CURVES.map((c) => `  ${c.label}: ${rate(r.rates[c.key])}`);
      const summary = $("summary");
      summary.dataset.lstmT0Rate = String(r.rates.lstm_t0);
      summary.dataset.redrawMs = ms.toFixed(0);
      summary.textContent = [
        `adapter: ${adapterName}`,
        `redraw: ${ms.toFixed(0)} ms (three models forward and backward on the GPU)`,
        "",
        "measured per-step rates going back in time (1 = the gradient persists):",
        ...rates,
        Number.isFinite(r.clip_before)
          ? `clipping: total gradient norm ${r.clip_before.toExponential(3)} → ${r.clip_after.toExponential(3)} after clip_grad_norm(max_norm = 1)`
          : Number.isNaN(r.clip_before)
            ? "clipping: the total gradient norm is not a number (the gradients overflowed into ∞ − ∞); clip_grad_norm then spreads that to every gradient, as PyTorch's does without error_if_nonfinite"
            : "clipping: the total gradient norm overflowed f32 (infinite); clip_grad_norm then scales every gradient by 0, as PyTorch's does without error_if_nonfinite",
        ...(notes.length ? ["", ...notes] : []),
        "",
        r.summary,
      ].join("\n");
    } while (again);
    body.dataset.ready = "1";
  } catch (e) {
    fail(describe(e));
  } finally {
    running = false;
  }
}

for (const id of SLIDERS) {
  $(id).addEventListener("input", () => {
    $(`${id}-value`).textContent = $(id).value;
    if (lab) redraw();
  });
}

// ---- the training panel ----

let model = null;
let training = false;
let losses = [];

function newModel() {
  model = lab.char_model($("cell").value);
  losses = [];
}

async function trainLoop() {
  const button = $("train-button");
  training = !training;
  button.textContent = training ? "Stop" : "Train";
  if (!training) { sessionStorage.removeItem("training"); return; }
  sessionStorage.setItem("training", "1");
  try {
    let rounds = 0;
    while (training) {
      const start = performance.now();
      const m = await model.train(8);
      const perStep = (performance.now() - start) / 8;
      losses.push(m.loss);
      plotLog($("loss-plot"), [{ label: "cross-entropy loss", color: "#1f77b4", values: losses }], "steps ÷ 8");
      $("train-status").textContent =
        `step ${m.step}: loss ${m.loss.toFixed(3)}, gradient norm ${m.grad_norm.toFixed(2)}, clipped ${(100 * m.clip_rate).toFixed(0)}% of steps (${perStep.toFixed(0)} ms per step)`;
      if (++rounds % 5 === 0) {
        $("sample").textContent = await model.sample(160, 0.8);
      }
    }
  } catch (e) {
    training = false;
    button.textContent = "Train";
    fail(describe(e));
  }
  sessionStorage.removeItem("training");
}

$("cell").addEventListener("change", () => {
  training = false;
  $("train-button").textContent = "Train";
  if (lab) newModel();
});
$("train-button").addEventListener("click", trainLoop);

// ---- start ----

async function main() {
  if (sessionStorage.getItem("training")) {
    sessionStorage.removeItem("training");
    $("train-status").textContent =
      "The last training run was interrupted by a page reload; its model is gone. Press Train to start a new one.";
  }
  if (!navigator.gpu) {
    fail("This browser has no WebGPU (navigator.gpu is missing). Use a recent Chrome, Edge or Safari, or enable WebGPU in your browser's settings.");
    return;
  }
  // The browser's own words for its adapter (wgpu's adapter info leaves them out on the web).
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  if (!adapter) {
    fail("This browser has WebGPU but offers no adapter: turn on hardware acceleration, or use another browser.");
    return;
  }
  const info = adapter.info || {};
  adapterName = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "unnamed";
  try {
    await init();
    lab = await Lab.open();
    window.wgpuLstmLab = lab; // for the page test (web/test_page.py), which loses the device
    adapterName += ` (${lab.adapter()})`;
  } catch (e) {
    fail(`No usable WebGPU adapter: ${e && e.message ? e.message : e}`);
    return;
  }
  status.textContent = "";
  newModel();
  $("train-button").disabled = false;
  await redraw();
}

main();
