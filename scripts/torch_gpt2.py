#!/usr/bin/env python3
"""An independent PyTorch implementation of tally's model, for side-by-side
checks outside the test suite (Debian's python3-torch; transformers and peft
are not needed):

- the GPT-2 forward pass as Hugging Face's GPT2LMHeadModel computes it
  (Conv1D weights [in, out], pre-LN blocks, fused c_attn, gelu_new, tied
  unembedding) with PEFT's LoRA for Conv1D (y = x W + b + (alpha/r) x A^T B^T);
- a reader of safetensors files (F32, F16, BF16);
- `eval`: the mean next-token cross-entropy of a tally checkpoint (and PEFT
  adapter) on a text, windowed exactly as `tally eval` does.

    /usr/bin/python3 scripts/torch_gpt2.py eval --model DIR [--adapter DIR] --text FILE
"""
import argparse, json, math, os, struct
import torch

def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        raw = bytearray(data[base + b: base + e])
        dt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[t["dtype"]]
        out[name] = torch.frombuffer(raw, dtype=dt).reshape(t["shape"]).float() if raw else torch.zeros(t["shape"])
    return out

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

def forward(w, cfg, ids, lora=None, scale=1.0):
    """Logits [B, T, V] of token ids [B, T]; w: HF names with the 'transformer.' prefix; lora: PEFT names."""
    B, T = ids.shape
    E, H, L, eps = cfg["n_embd"], cfg["n_head"], cfg["n_layer"], cfg["layer_norm_epsilon"]
    d = E // H
    lora = lora or {}

    def conv1d(x, module):
        y = x @ w[f"transformer.{module}.weight"] + w[f"transformer.{module}.bias"]
        a = lora.get(f"base_model.model.transformer.{module}.lora_A.weight")
        if a is not None:
            y = y + scale * (x @ a.T @ lora[f"base_model.model.transformer.{module}.lora_B.weight"].T)
        return y

    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(L):
        h = f"h.{i}"
        a = torch.nn.functional.layer_norm(x, (E,), w[f"transformer.{h}.ln_1.weight"], w[f"transformer.{h}.ln_1.bias"], eps)
        q, k, v = conv1d(a, f"{h}.attn.c_attn").split(E, dim=2)
        q, k, v = (z.view(B, T, H, d).transpose(1, 2) for z in (q, k, v))
        s = ((q @ k.transpose(-1, -2)) / math.sqrt(d)).masked_fill(~mask, torch.finfo(torch.float32).min)
        o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, T, E)
        x = x + conv1d(o, f"{h}.attn.c_proj")
        m = torch.nn.functional.layer_norm(x, (E,), w[f"transformer.{h}.ln_2.weight"], w[f"transformer.{h}.ln_2.bias"], eps)
        x = x + conv1d(gelu_new(conv1d(m, f"{h}.mlp.c_fc")), f"{h}.mlp.c_proj")
    x = torch.nn.functional.layer_norm(x, (E,), w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    return x @ w["transformer.wte.weight"].T

def evaluate(model_dir, text_path, adapter_dir=None):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = {(k if k.startswith("transformer.") else "transformer." + k): v for k, v in read_safetensors(os.path.join(model_dir, "model.safetensors")).items()}
    lora, scale = None, 1.0
    if adapter_dir:
        ac = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
        lora, scale = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors")), ac["lora_alpha"] / ac["r"]
    data = list(open(text_path, "rb").read())
    P = cfg["n_positions"]
    total, tokens = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(data), P):
            win = data[i:i + P]
            if len(win) < 2:
                continue
            ids = torch.tensor([win])
            logits = forward(w, cfg, ids, lora, scale)
            total += torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="sum").item()
            tokens += len(win) - 1
    return {"loss": total / tokens, "perplexity": math.exp(total / tokens), "tokens": tokens}

def bench(model_dir, batch, rank, steps, threads):
    """Milliseconds per LoRA training step (c_attn, alpha = 2r, AdamW) on random byte windows, as tally's bench does it."""
    import time
    if threads > 0:
        torch.set_num_threads(threads)
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = {(k if k.startswith("transformer.") else "transformer." + k): v for k, v in read_safetensors(os.path.join(model_dir, "model.safetensors")).items()}
    E, P = cfg["n_embd"], cfg["n_positions"]
    g = torch.Generator().manual_seed(1)
    lora = {}
    for i in range(cfg["n_layer"]):
        base = f"base_model.model.transformer.h.{i}.attn.c_attn"
        lora[f"{base}.lora_A.weight"] = ((torch.rand(rank, E, generator=g) * 2 - 1) / math.sqrt(E)).requires_grad_()
        lora[f"{base}.lora_B.weight"] = torch.zeros(3 * E, rank).requires_grad_()
    opt = torch.optim.AdamW(list(lora.values()), lr=1e-3, weight_decay=0.0)
    ids = torch.randint(0, 256, (batch, P), generator=g)
    times = []
    for s in range(steps + 2):
        t0 = time.perf_counter()
        logits = forward(w, cfg, ids, lora, 2.0)
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s >= 2:
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"msPerStep": times[len(times) // 2], "threads": torch.get_num_threads(), "torch": torch.__version__}

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval")
    e.add_argument("--model", required=True)
    e.add_argument("--adapter")
    e.add_argument("--text", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--model", required=True)
    b.add_argument("--batch", type=int, default=8)
    b.add_argument("--rank", type=int, default=8)
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.cmd == "eval":
        print(json.dumps(evaluate(a.model, a.text, a.adapter)))
    else:
        print(json.dumps(bench(a.model, a.batch, a.rank, a.steps, a.threads)))
