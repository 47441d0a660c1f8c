#!/usr/bin/env python3
"""Writes test/fixtures/gpt2-anchor.json: a tiny GPT-2 with a LoRA adapter,
its forward pass and loss computed by PyTorch, for test/training/gpt2.test.ts.

The reference is the plain-PyTorch model of scripts/torch_gpt2.py (Hugging
Face's GPT2LMHeadModel and PEFT's LoRA for Conv1D). Run with Debian's
python3-torch:
    /usr/bin/python3 scripts/gpt2-anchor.py
"""
import base64, json, os
import torch
from torch_gpt2 import forward

torch.manual_seed(20261126)
V, P, E, L, H = 257, 16, 16, 2, 2
R, ALPHA = 4, 8.0
EPS = 1e-5

def rnd(*shape, scale=0.2):
    return (torch.randn(*shape, dtype=torch.float64) * scale).float()

w = {"transformer.wte.weight": rnd(V, E), "transformer.wpe.weight": rnd(P, E, scale=0.05)}
for i in range(L):
    h = f"transformer.h.{i}"
    w[f"{h}.ln_1.weight"] = 1 + rnd(E, scale=0.1); w[f"{h}.ln_1.bias"] = rnd(E, scale=0.1)
    w[f"{h}.attn.c_attn.weight"] = rnd(E, 3 * E); w[f"{h}.attn.c_attn.bias"] = rnd(3 * E, scale=0.05)
    w[f"{h}.attn.c_proj.weight"] = rnd(E, E); w[f"{h}.attn.c_proj.bias"] = rnd(E, scale=0.05)
    w[f"{h}.ln_2.weight"] = 1 + rnd(E, scale=0.1); w[f"{h}.ln_2.bias"] = rnd(E, scale=0.1)
    w[f"{h}.mlp.c_fc.weight"] = rnd(E, 4 * E); w[f"{h}.mlp.c_fc.bias"] = rnd(4 * E, scale=0.05)
    w[f"{h}.mlp.c_proj.weight"] = rnd(4 * E, E); w[f"{h}.mlp.c_proj.bias"] = rnd(E, scale=0.05)
w["transformer.ln_f.weight"] = 1 + rnd(E, scale=0.1); w["transformer.ln_f.bias"] = rnd(E, scale=0.1)

targets = {"c_attn": (E, 3 * E), "c_proj": (E, E)}
lora = {}
for i in range(L):
    for t, (din, dout) in targets.items():
        base = f"base_model.model.transformer.h.{i}.attn.{t}"
        lora[f"{base}.lora_A.weight"] = rnd(R, din, scale=0.3)
        lora[f"{base}.lora_B.weight"] = rnd(dout, R, scale=0.3)  # non-zero, so the adapter path is exercised

def b64(t):
    return base64.b64encode(t.detach().contiguous().numpy().astype("<f4").tobytes()).decode()

ids = torch.tensor([[72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100, 33, 256, 0, 255],
                    [84, 104, 101, 32, 85, 110, 105, 111, 110, 32, 105, 115, 32, 115, 116, 114]])
out = {}
for use_lora in (False, True):
    for p in lora.values():
        p.requires_grad_(use_lora)
    cfg = {"n_embd": E, "n_head": H, "n_layer": L, "layer_norm_epsilon": EPS}
    logits = forward(w, cfg, ids, lora if use_lora else None, ALPHA / R)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
    entry = {"logits": b64(logits), "loss": loss.item()}
    if use_lora:
        loss.backward()
        entry["grads"] = {k: b64(p.grad) for k, p in lora.items()}
    out["lora" if use_lora else "base"] = entry

fixture = {
    "description": "A tiny GPT-2 (vocab 257, n_positions 16, n_embd 16, 2 layers, 2 heads) with a LoRA adapter (r 4, alpha 8, c_attn and attn c_proj), and its logits, loss and LoRA gradients from PyTorch " + torch.__version__ + ", written by scripts/gpt2-anchor.py",
    "config": {"vocab_size": V, "n_positions": P, "n_embd": E, "n_layer": L, "n_head": H, "layer_norm_epsilon": EPS},
    "lora": {"r": R, "alpha": ALPHA, "targets": ["c_attn", "attn.c_proj"]},
    "weights": {k: {"shape": list(v.shape), "f32": b64(v)} for k, v in w.items()},
    "adapter": {k: {"shape": list(v.shape), "f32": b64(v)} for k, v in lora.items()},
    "ids": ids.tolist(),
    "base": out["base"],
    "withLora": out["lora"],
}
path = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "gpt2-anchor.json")
with open(path, "w") as f:
    json.dump(fixture, f, separators=(",", ":"))
    f.write("\n")
print(f"wrote {path}: base loss {out['base']['loss']:.6f}, with LoRA {out['lora']['loss']:.6f}")
