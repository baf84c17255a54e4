#!/usr/bin/env python3
"""Writes the PyTorch golden files the tests compare against (run by hand, not by CI):

    python3 tests/golden/make_goldens.py      # needs torch and safetensors

For each configuration (nn.LSTM, with and without proj_size, nn.GRU, nn.RNN with tanh and relu),
in tests/golden/<name>/ (`make_goldens.py NAME ...` writes only those):
  weights.safetensors      the module's state_dict, float32, as safetensors.torch.save_file writes it
  input.safetensors        x (and h0, c0, lengths), float32 / int64
  grad_output.safetensors  dy, dh_n, dc_n: the gradients of the loss Σ y·dy + Σ h_n·dh_n + Σ c_n·dc_n
  expected.safetensors     float64 results of PyTorch run in double precision on exactly those
                           float32 values: y, h_n, c_n, grad.x, grad.h0, grad.c0, grad.<param>,
                           clip.max_norm, clip.total_norm, clipped.<param> (clip_grad_norm_)
"""
import os

import torch
from safetensors.torch import save_file
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

HERE = os.path.dirname(os.path.abspath(__file__))

CONFIGS = {
    # name: (input, hidden, layers, bidirectional, bias, batch_first, T, B, lengths, initial state)
    "one_layer": (3, 5, 1, False, True, False, 4, 2, None, True),
    "two_layers": (4, 6, 2, False, True, False, 5, 3, None, True),
    "bidirectional": (3, 4, 1, True, True, False, 6, 2, None, True),
    "varlen_bidirectional_two_layers": (5, 7, 2, True, True, False, 5, 3, [5, 2, 4], True),
    "odd_sizes_t1_b1": (13, 7, 1, False, True, False, 1, 1, None, False),
    "long_sequence": (2, 3, 1, False, True, False, 60, 2, None, True),
    "no_bias_batch_first": (4, 5, 2, True, False, True, 3, 2, [3, 2], False),
    # nn.RNN (tanh): no cell state, so no c0, c_n, dc_n
    "rnn_bidirectional_varlen": (4, 6, 2, True, True, False, 5, 2, [5, 3], True),
    # nn.RNN(nonlinearity='relu'): its state dict looks like a tanh RNN's
    "rnn_relu_two_layers": (5, 7, 2, False, True, False, 6, 3, None, True),
    # nn.GRU: gates r, z, n, b_hn inside r ⊙ (…)
    "gru_bidirectional_varlen": (4, 6, 2, True, True, False, 5, 3, [5, 2, 4], True),
    "gru_no_bias_batch_first_t1": (3, 5, 1, False, False, True, 1, 2, None, False),
    # nn.LSTM(proj_size=P): h is P wide, c stays H
    "lstm_proj_bidirectional_varlen": (4, 7, 2, True, True, False, 5, 3, [5, 3, 1], True),
    "lstm_proj_no_bias_batch_first": (3, 6, 1, False, False, True, 4, 2, None, True),
}
RNN = {"rnn_bidirectional_varlen", "rnn_relu_two_layers"}
RELU = {"rnn_relu_two_layers"}
GRU = {"gru_bidirectional_varlen", "gru_no_bias_batch_first_t1"}
PROJ = {"lstm_proj_bidirectional_varlen": 3, "lstm_proj_no_bias_batch_first": 2}


def run(module, x, h0, c0, lengths, batch_first, steps):
    """(y, h_n, c_n) of an nn.LSTM, or (y, h_n, None) of an nn.RNN; y zero past each length."""
    state = None if h0 is None else (h0 if c0 is None else (h0, c0))
    if lengths is not None:
        x = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    y, last = module(x, state)
    if lengths is not None:
        y, _ = pad_packed_sequence(y, batch_first=batch_first, total_length=steps)
    return (y, *last) if isinstance(last, tuple) else (y, last, None)


def make(name, cfg, seed):
    inp, hid, layers, bidir, bias, bf, steps, batch, lengths, with_state = cfg
    torch.manual_seed(seed)
    dirs = 2 if bidir else 1
    no_cell_state = name in RNN or name in GRU
    options = dict(num_layers=layers, bias=bias, batch_first=bf, bidirectional=bidir)
    if name in RNN:
        kind = torch.nn.RNN
        options["nonlinearity"] = "relu" if name in RELU else "tanh"
    elif name in GRU:
        kind = torch.nn.GRU
    else:
        kind = torch.nn.LSTM
        options["proj_size"] = PROJ.get(name, 0)
    lstm = kind(inp, hid, **options)
    out_size = PROJ.get(name, hid)
    xs = (batch, steps, inp) if bf else (steps, batch, inp)
    ys = (batch, steps, dirs * out_size) if bf else (steps, batch, dirs * out_size)
    hs, cs = (layers * dirs, batch, out_size), (layers * dirs, batch, hid)
    x = torch.randn(xs)
    h0, c0 = (torch.randn(hs) * 0.5, torch.randn(cs)) if with_state else (None, None)
    dy, dh_n, dc_n = torch.randn(ys), torch.randn(hs), torch.randn(cs)
    if no_cell_state:
        c0, dc_n = None, None

    out = os.path.join(HERE, name)
    os.makedirs(out, exist_ok=True)
    save_file({k: v.contiguous() for k, v in lstm.state_dict().items()}, os.path.join(out, "weights.safetensors"))
    inputs = {"x": x}
    if with_state:
        inputs["h0"] = h0
    if c0 is not None:
        inputs["c0"] = c0
    if lengths is not None:
        inputs["lengths"] = torch.tensor(lengths, dtype=torch.int64)
    save_file(inputs, os.path.join(out, "input.safetensors"))
    grads = {"dy": dy, "dh_n": dh_n}
    if dc_n is not None:
        grads["dc_n"] = dc_n
    save_file(grads, os.path.join(out, "grad_output.safetensors"))

    # The oracle: the same float32 values, computed in float64.
    ref = lstm.double()
    xd = x.double().requires_grad_()
    h0d = h0.double().requires_grad_() if with_state else None
    c0d = c0.double().requires_grad_() if c0 is not None else None
    y, h_n, c_n = run(ref, xd, h0d, c0d, lengths, bf, steps)
    loss = (y * dy.double()).sum() + (h_n * dh_n.double()).sum()
    if c_n is not None:
        loss = loss + (c_n * dc_n.double()).sum()
    loss.backward()
    exp = {"y": y.detach(), "h_n": h_n.detach(), "grad.x": xd.grad}
    if c_n is not None:
        exp["c_n"] = c_n.detach()
    if with_state:
        exp["grad.h0"] = h0d.grad
    if c0d is not None:
        exp["grad.c0"] = c0d.grad
    params = dict(ref.named_parameters())
    for k, p in params.items():
        exp["grad." + k] = p.grad.clone()
    total = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params.values()]))
    max_norm = float(total) * 0.5  # clipping must act
    returned = torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm)
    exp["clip.max_norm"] = torch.tensor([max_norm], dtype=torch.float64)
    exp["clip.total_norm"] = returned.reshape(1).double()
    for k, p in params.items():
        exp["clipped." + k] = p.grad.clone()
    save_file({k: v.contiguous() for k, v in exp.items()}, os.path.join(out, "expected.safetensors"))
    print(f"{name}: {kind.__name__}({options}) T={steps} B={batch} I={inp} H={hid} L={layers} D={dirs} bias={bias} "
          f"batch_first={bf} lengths={lengths} |grad|={float(total):.4f}")


if __name__ == "__main__":
    import sys

    print("torch", torch.__version__)
    for i, (name, cfg) in enumerate(CONFIGS.items()):
        if len(sys.argv) == 1 or name in sys.argv[1:]:
            make(name, cfg, 1000 + i)
