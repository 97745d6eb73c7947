"""PyTorch and safetensors samples, each written by torch itself (or the safetensors package) in a child process.

- ``torch_zip_bigru``: ``torch.save(model.state_dict())`` (zip format) of a model with
  ``encoder.gru = nn.GRU(3, 4, num_layers=2, bidirectional=True)``, an ``nn.LSTM(3, 4)`` and an
  ``nn.RNN(3, 4)`` beside it (not GRUs), and a ``head = nn.Linear(8, 2)``.
- ``torch_legacy``: the legacy format (``_use_new_zipfile_serialization=False``) of ``gru = nn.GRU(3, 4)``.
- ``torch_checkpoint``: a training checkpoint ``{"model": state_dict, "optimizer": Adam state, "epoch": 3}``
  saved as ``checkpoint.tar`` (the suffix says nothing).
- ``torch_lightning``: the dict Lightning writes to ``epoch=1-step=10.ckpt`` (``state_dict`` with
  ``model.`` keys, ``optimizer_states``, ``pytorch-lightning_version``, ``hyper_parameters``),
  saved by ``torch.save`` (Lightning is not needed to write that dict).
- ``torch_dataparallel``: ``nn.DataParallel(model).state_dict()``: every key starts with ``module.``.
- ``torch_grucell``: ``decoder.cell = nn.GRUCell(5, 3)`` and ``decoder.plain = nn.GRUCell(3, 2, bias=False)``.
- ``torch_nobias_f64``: ``nn.GRU(3, 4, num_layers=2, bias=False)`` in float64.
- ``torch_f16``: ``nn.GRU(3, 4)`` in float16.
- ``torch_bf16_safetensors``: ``safetensors.torch.save_file`` of a bfloat16 ``nn.GRU(3, 4, bidirectional=True)``
  under ``rnn.``, with ``__metadata__``.
- ``torch_whole_model``: ``torch.save(model)`` of the whole ``__main__.Seq2Seq`` (encoder nn.GRU,
  decoder nn.GRUCell): a pickle of classes, read by gruinspect without importing them.
- ``torch_cuda_flat``: an ``nn.GRU(3, 4, bidirectional=True)`` whose parameters are views into one
  flat storage (as cuDNN's flat weight buffer), saved with location ``cuda:0`` (a location tagger
  registered with ``torch.serialization.register_package``, since this machine has no GPU).
- ``torch_script``: ``torch.jit.save(torch.jit.script(model))`` of a module holding ``gru = nn.GRU(3, 4)``.

Manifest entries are computed from the modules the child built and ``torch.load(weights_only=True)``
of the written file, not by gruinspect.

    python sample_checkpoints/make_samples.py --only torch_zip_bigru ...
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SAMPLES = ("torch_zip_bigru", "torch_legacy", "torch_checkpoint", "torch_lightning", "torch_dataparallel",
           "torch_grucell", "torch_nobias_f64", "torch_f16", "torch_bf16_safetensors", "torch_whole_model",
           "torch_cuda_flat", "torch_script")


def _generator(name):
    def generate(folder: Path) -> dict:
        entry_file = folder.parent / f".{name}.entry.json"
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
        subprocess.run([sys.executable, __file__, name, str(folder), str(entry_file)], check=True, env=env)
        entry = json.loads(entry_file.read_text())
        entry_file.unlink()
        return entry
    return generate


GENERATORS = {name: _generator(name) for name in SAMPLES}


# ----------------------------------------------------------------------------- in the child

try:
    import torch
    from torch import nn
except ImportError:  # the parent (make_samples.py) only needs GENERATORS
    torch = nn = None

if nn is not None:
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(3, 4, num_layers=2, bidirectional=True)

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Encoder()
            self.lstm = nn.LSTM(3, 4)
            self.rnn = nn.RNN(3, 4)
            self.head = nn.Linear(8, 2)

    class Single(nn.Module):
        def __init__(self, **kwargs):
            super().__init__()
            self.gru = nn.GRU(3, 4, **kwargs)
            self.out = nn.Linear(4, 1)

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = nn.GRUCell(5, 3)
            self.plain = nn.GRUCell(3, 2, bias=False)

    class CellModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.decoder = Decoder()

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.GRU(3, 4, batch_first=True)
            self.decoder = nn.GRUCell(4, 4)
            self.proj = nn.Linear(4, 3)

    class Scripted(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(3, 4)

        def forward(self, x):
            return self.gru(x)[0]


def _cells(model, prefix: str = "") -> list[dict]:
    """Manifest cells of every nn.GRU / nn.GRUCell in ``model``, named as gruinspect documents."""
    cells = []
    for path, module in model.named_modules():
        base = prefix + (f"{path}." if path else "")
        mod = (prefix + path).rstrip(".")
        if isinstance(module, nn.GRU):
            dirs = ["", "_reverse"] if module.bidirectional else [""]
            for k in range(module.num_layers):
                for sfx in dirs:
                    roles = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if module.bias else [])
                    layer = f"l{k}{sfx}"
                    cells.append({
                        "name": f"{mod}/{layer}" if mod else layer, "layout": "pytorch-gru",
                        "input_size": module.input_size if k == 0 else module.hidden_size * len(dirs),
                        "units": module.hidden_size, "reset_after": True,
                        "dtype": str(getattr(module, f"weight_ih_l{k}").dtype).replace("torch.", ""),
                        "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": module.bias,
                        "tensors": {r: f"{base}{r}_l{k}{sfx}" for r in roles}})
        elif isinstance(module, nn.GRUCell):
            roles = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if module.bias else [])
            cells.append({
                "name": mod or "gru_cell", "layout": "pytorch-gru", "input_size": module.input_size,
                "units": module.hidden_size, "reset_after": True,
                "dtype": str(module.weight_ih.dtype).replace("torch.", ""), "activation": "tanh",
                "recurrent_activation": "sigmoid", "use_bias": module.bias,
                "tensors": {r: f"{base}{r}" for r in roles}})
    return cells


def flatten(obj, prefix="") -> dict:
    """Tensors of a torch.load'ed object by the dotted path gruinspect names them with."""
    out = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}.{i}" if prefix else str(i)))
    return out


def _entry(name, path, fmt, description, cells, tensors) -> dict:
    used = {t for c in cells for t in c["tensors"].values()}
    return {"name": name, "path": f"{name}/{path}", "format": fmt, "description": description,
            "writer": f"torch {torch.__version__}", "cells": cells,
            "other_tensors": sorted(n for n in tensors if n not in used)}


def _trained_optimizer(model):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = sum(p.sum() for p in model.parameters())
    loss.backward()
    opt.step()
    return opt


def make(name: str, folder: Path) -> dict:
    torch.manual_seed(sum(map(ord, name)))
    if name == "torch_zip_bigru":
        model = Tagger()
        torch.save(model.state_dict(), folder / "model.pt")
        loaded = torch.load(folder / "model.pt", weights_only=True)
        return _entry(name, "model.pt", "pytorch-zip", "torch.save(state_dict) of encoder.gru = nn.GRU(3, 4, "
                      "num_layers=2, bidirectional=True) beside nn.LSTM(3, 4), nn.RNN(3, 4), nn.Linear(8, 2)",
                      _cells(model), flatten(loaded))
    if name == "torch_legacy":
        model = Single()
        torch.save(model.state_dict(), folder / "model.pth", _use_new_zipfile_serialization=False)
        loaded = torch.load(folder / "model.pth", weights_only=True)
        return _entry(name, "model.pth", "pytorch-legacy", "legacy torch.save format (_use_new_zipfile_"
                      "serialization=False) of gru = nn.GRU(3, 4) and out = nn.Linear(4, 1)", _cells(model),
                      flatten(loaded))
    if name == "torch_checkpoint":
        model = Single(num_layers=2)
        opt = _trained_optimizer(model)
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, folder / "checkpoint.tar")
        loaded = torch.load(folder / "checkpoint.tar", weights_only=True)
        return _entry(name, "checkpoint.tar", "pytorch-zip", "training checkpoint {model, optimizer (Adam, one "
                      "step), epoch} of gru = nn.GRU(3, 4, num_layers=2)", _cells(model, "model."), flatten(loaded))
    if name == "torch_lightning":
        model = Single()
        opt = _trained_optimizer(model)
        ckpt = {"epoch": 1, "global_step": 10, "pytorch-lightning_version": "2.4.0",
                "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "loops": {}, "callbacks": {}, "optimizer_states": [opt.state_dict()], "lr_schedulers": [],
                "hparams_name": "kwargs", "hyper_parameters": {"hidden": 4, "lr": 1e-3}}
        torch.save(ckpt, folder / "epoch=1-step=10.ckpt")
        loaded = torch.load(folder / "epoch=1-step=10.ckpt", weights_only=True)
        return _entry(name, "epoch=1-step=10.ckpt", "pytorch-zip", "the checkpoint dict PyTorch Lightning writes "
                      "(state_dict with model. keys, optimizer_states, hyper_parameters) around nn.GRU(3, 4)",
                      _cells(model, "state_dict.model."), flatten(loaded))
    if name == "torch_dataparallel":
        model = nn.DataParallel(Single())
        torch.save(model.state_dict(), folder / "weights.bin")
        loaded = torch.load(folder / "weights.bin", weights_only=True)
        return _entry(name, "weights.bin", "pytorch-zip", "nn.DataParallel(model).state_dict(): module.gru = "
                      "nn.GRU(3, 4), module.out = nn.Linear(4, 1)", _cells(model), flatten(loaded))
    if name == "torch_grucell":
        model = CellModel()
        torch.save(model.state_dict(), folder / "cells.pt")
        loaded = torch.load(folder / "cells.pt", weights_only=True)
        return _entry(name, "cells.pt", "pytorch-zip", "decoder.cell = nn.GRUCell(5, 3), decoder.plain = "
                      "nn.GRUCell(3, 2, bias=False)", _cells(model), flatten(loaded))
    if name == "torch_nobias_f64":
        model = nn.GRU(3, 4, num_layers=2, bias=False).double()
        torch.save(model.state_dict(), folder / "gru.pt")
        loaded = torch.load(folder / "gru.pt", weights_only=True)
        return _entry(name, "gru.pt", "pytorch-zip", "a bare nn.GRU(3, 4, num_layers=2, bias=False) state_dict "
                      "in float64", _cells(model), flatten(loaded))
    if name == "torch_f16":
        model = Single().half()
        torch.save(model.state_dict(), folder / "half.pt")
        loaded = torch.load(folder / "half.pt", weights_only=True)
        return _entry(name, "half.pt", "pytorch-zip", "gru = nn.GRU(3, 4) and a Linear in float16", _cells(model),
                      flatten(loaded))
    if name == "torch_bf16_safetensors":
        from safetensors.torch import load_file, save_file

        model = nn.Sequential()
        model.rnn = nn.GRU(3, 4, bidirectional=True).to(torch.bfloat16)
        save_file(model.state_dict(), str(folder / "model.safetensors"), metadata={"format": "pt"})
        loaded = load_file(str(folder / "model.safetensors"))
        return _entry(name, "model.safetensors", "safetensors", "safetensors.torch.save_file of rnn = nn.GRU(3, 4, "
                      "bidirectional=True) in bfloat16", _cells(model), loaded)
    if name == "torch_whole_model":
        model = Seq2Seq()
        torch.save(model, folder / "model.pt")
        loaded = torch.load(folder / "model.pt", weights_only=False)  # our own file, written just now
        return _entry(name, "model.pt", "pytorch-zip", "torch.save(model) of the whole __main__.Seq2Seq: encoder "
                      "= nn.GRU(3, 4, batch_first=True), decoder = nn.GRUCell(4, 4), proj = nn.Linear(4, 3)",
                      _cells(model), dict(loaded.state_dict()))
    if name == "torch_cuda_flat":
        model = Single(bidirectional=True)
        params = list(model.gru.parameters())
        flat = torch.cat([p.detach().reshape(-1) for p in params])
        pos = 0
        with torch.no_grad():
            for p in params:
                p.data = flat[pos:pos + p.numel()].view_as(p)
                pos += p.numel()
        torch.serialization.register_package(-1, lambda storage: "cuda:0", lambda storage, location: None)
        torch.save(model.state_dict(), folder / "flat.pt")
        loaded = torch.load(folder / "flat.pt", weights_only=True, map_location="cpu")
        return _entry(name, "flat.pt", "pytorch-zip", "nn.GRU(3, 4, bidirectional=True) whose 8 parameters are "
                      "views into one flat storage, saved with location cuda:0", _cells(model), flatten(loaded))
    if name == "torch_script":
        model = Scripted()
        torch.jit.save(torch.jit.script(model), str(folder / "scripted.pt"))
        loaded = torch.jit.load(str(folder / "scripted.pt"))
        return _entry(name, "scripted.pt", "torchscript", "torch.jit.save(torch.jit.script(model)) of gru = "
                      "nn.GRU(3, 4): a TorchScript archive", _cells(model), dict(loaded.state_dict()))
    raise SystemExit(f"unknown sample {name}")


if __name__ == "__main__":
    _name, _folder, _entry_file = sys.argv[1:4]
    Path(_entry_file).write_text(json.dumps(make(_name, Path(_folder)), indent=1))
