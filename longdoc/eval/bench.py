"""Speed and memory (`longdoc bench`): prefill time, decode time per token and peak memory per method and length.

Every (method, length) runs in a fresh Python subprocess, so that its memory figure is its own: on CPU,
`peak_mem_mb` is the process's resident-set high-water mark (`resource.getrusage(...).ru_maxrss`; model weights
and the Python/torch runtime included, `load_mem_mb` is the same mark right after loading); on CUDA it is
`torch.cuda.max_memory_allocated()` (tensors only). Prompts are random token ids: attention cost does not
depend on what the tokens say. One short warm-up run precedes the timed one.

    python -m longdoc.eval.bench '<json spec>'      the worker: prints one JSON line with the measurement
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from typing import Callable

from .methods import Method, checked_configs
from .results import ResultsFile, config_id

# Model shapes for timings with random weights (no download): the paper's Llama-2-7B, Llama-3-8B (GQA, 8 kv
# heads), and a tiny one that runs anywhere (the CPU test of the bench and of scripts/gpu_check.sh --dry)
LLAMA2_7B = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096, rope_theta=10000.0)
LLAMA3_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192, rope_theta=500000.0)
TINY = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=256, rope_theta=10000.0)
SHAPES = {"llama2-7b": LLAMA2_7B, "llama3-8b": LLAMA3_8B, "tiny": TINY}


def shape_config(name: str):
    """The transformers LlamaConfig of a named shape (SHAPES)."""
    from transformers import AutoConfig

    return AutoConfig.for_model("llama", **SHAPES[name])


# -- the worker (child process) -------------------------------------------------------------------------------
def measure(spec: dict) -> dict:
    """Load the model, switch to the method, prefill `length` tokens, decode `decode_tokens`; time and memory."""
    import torch

    from ..longheads.config import LongHeadsConfig
    from ..generate import decode_one, prefill
    from ..prefix import new_cache
    from ..settings import EngineSettings
    from .methods import activate

    EngineSettings(threads=spec.get("threads")).apply_threads()
    model = _load(spec)
    device = next(model.parameters()).device
    cfg = LongHeadsConfig.from_dict(spec["config"]) if spec.get("config") else None
    activate(model, cfg)
    load_mem = _peak_mb(device)
    L, n_dec = spec["length"], spec["decode_tokens"]
    g = torch.Generator().manual_seed(spec.get("seed", 0))
    vocab = model.config.vocab_size
    ids = torch.randint(100, vocab - 100, (1, L), generator=g).to(device)

    def run(n: int, steps: int) -> tuple[float, float]:
        cache = new_cache(model)
        exact_from = n - cfg.exact_tail if cfg is not None else None  # as a real question's tail
        _sync(device)
        t0 = time.perf_counter()
        # full attention gets its fastest plain form: one forward over the whole prompt (SDPA's causal kernel);
        # blocks would add an explicit mask per block (measured 1.5x slower at 8k)
        logits = prefill(model, cache, ids[:, :n], exact_from=exact_from, block=None if cfg is not None else n)
        _sync(device)
        t1 = time.perf_counter()
        for _ in range(steps):
            logits = decode_one(model, cache, logits.argmax(dim=-1, keepdim=True))
        _sync(device)
        return t1 - t0, (time.perf_counter() - t1) / max(steps, 1)

    run(min(L, 512), 2)  # first-call overheads (kernels, allocator) out of the timed run
    prefill_s, decode_s = run(L, n_dec)
    return {"prefill_s": round(prefill_s, 3), "decode_s_per_token": round(decode_s, 5),
            "peak_mem_mb": round(_peak_mb(device), 1), "load_mem_mb": round(load_mem, 1),
            "prefill_tokens_per_s": round(L / prefill_s, 1), "device": str(device),
            "mem_kind": "cuda_max_allocated" if device.type == "cuda" else "rss_high_water"}


def measure_llama_cpp(spec: dict) -> dict:
    """llama.cpp full attention on the same GGUF (llama-cpp-python), for comparison."""
    import random

    import llama_cpp
    from llama_cpp import Llama

    L, n_dec = spec["length"], spec["decode_tokens"]
    llm = Llama(model_path=spec["gguf"], n_ctx=L + n_dec + 8, n_threads=spec.get("threads") or os.cpu_count(),
                n_batch=512, verbose=False)
    load_mem = _peak_mb(None)
    rng = random.Random(spec.get("seed", 0))
    ids = [rng.randrange(100, llm.n_vocab() - 100) for _ in range(L)]
    ctx = llm._ctx.ctx  # llama.cpp's own counters (prompt eval, eval) read through its C API
    llama_cpp.llama_perf_context_reset(ctx)
    t0 = time.perf_counter()
    llm.eval(ids)
    llama_cpp.llama_synchronize(ctx)  # eval queues the work; its counters are closed here
    t1 = time.perf_counter()
    for _ in range(n_dec):
        llm.eval([rng.randrange(100, llm.n_vocab() - 100)])
        llama_cpp.llama_synchronize(ctx)
    decode_s = (time.perf_counter() - t1) / max(n_dec, 1)
    perf = llama_cpp.llama_perf_context(ctx)
    own = {"llama_prompt_eval_s": round(perf.t_p_eval_ms / 1000, 3), "llama_prompt_tokens": int(perf.n_p_eval),
           "llama_eval_ms_per_token": round(perf.t_eval_ms / max(int(perf.n_eval), 1), 2),
           "llama_eval_tokens": int(perf.n_eval)}
    return {"prefill_s": round(t1 - t0, 3), "decode_s_per_token": round(decode_s, 5),
            "peak_mem_mb": round(_peak_mb(None), 1), "load_mem_mb": round(load_mem, 1),
            "prefill_tokens_per_s": round(L / (t1 - t0), 1), "device": "cpu", "mem_kind": "rss_high_water",
            "threads": spec.get("threads") or os.cpu_count(), **own}


def _load(spec: dict):
    import torch

    if spec.get("shape"):
        from transformers import AutoModelForCausalLM

        device = spec.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        config = shape_config(spec["shape"])
        torch.manual_seed(0)
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=spec.get("attn", "sdpa"))
        return model.eval()
    from ..settings import EngineSettings

    return EngineSettings(model=spec.get("model"), revision=spec.get("revision"), dtype=spec.get("dtype"),
                          device=spec.get("device"), threads=spec.get("threads")).load().model  # load() applies threads


def _sync(device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize()


def _peak_mb(device) -> float:
    if device is not None and device.type == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux (bytes on macOS)
    return kb / 2**20 if sys.platform == "darwin" else kb / 2**10


# -- the parent -----------------------------------------------------------------------------------------------
def run_in_subprocess(spec: dict, timeout: float | None = None) -> dict:
    """Run one measurement in a fresh interpreter; returns its dict, or {"error": ...}."""
    cmd = [sys.executable, "-m", "longdoc.eval.bench", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"worker failed: {tail[:300]}"}
    return json.loads(lines[-1])


def run_bench(model_source: str | None, model_config, methods: list[Method], lengths: list[int],
              results: ResultsFile, *, decode_tokens: int = 16, threads: int | None = None, common: dict | None = None,
              max_full_length: int | None = None, shape: str | None = None, device: str | None = None,
              attn: str = "sdpa", llama_cpp_gguf: str | None = None, timeout: float | None = None,
              revision: str | None = None, dtype: str | None = None,
              on_trial: Callable[[dict], None] | None = None) -> list[dict]:
    """Measure every method at every length (shortest first), saving after each; return records with ratios."""
    configs = checked_configs(methods, model_config, common)
    labels = [m.label for m in methods] + (["llama.cpp"] if llama_cpp_gguf else [])
    skipped: dict[tuple, str] = {}

    def table(trials):
        return with_ratios(trials, labels, lengths, skipped)

    for length in lengths:
        for label in labels:
            m = next((x for x in methods if x.label == label), None)
            cfg = configs.get(label)
            if label != "llama.cpp" and m.is_full and max_full_length and length > max_full_length:
                skipped[(label, length)] = f"length > --max-full-length {max_full_length}"
                results.set_results(table(results.trials))
                continue
            key = dict(method=label, config_id=config_id(cfg), length=length, depth=None, trial=0, seed=0)
            spec = {"model": model_source, "revision": revision, "dtype": dtype, "shape": shape, "device": device,
                    "attn": attn, "length": length,
                    "decode_tokens": decode_tokens, "threads": threads, "seed": 0,
                    "config": cfg.to_dict() if cfg is not None else None}
            if label == "llama.cpp":
                spec = {**spec, "llama_cpp": True, "gguf": llama_cpp_gguf}
            results.measure(key, lambda: run_in_subprocess(spec, timeout), table, on_trial, timed=False)
    records = table(results.trials)
    results.set_results(records)
    return records


def with_ratios(trials: list[dict], labels: list[str], lengths: list[int], skipped: dict | None = None) -> list[dict]:
    """One record per method x length, with full/method and window/method time ratios (> 1: method faster), and
    against full attention the method's share of its time and peak memory (`*_vs_full`: < 1 means less)."""
    skipped = skipped or {}
    fields = ("prefill_s", "decode_s_per_token", "peak_mem_mb", "load_mem_mb", "prefill_tokens_per_s", "error")
    found = {(t["method"], t["length"]): t for t in trials}
    records = []
    for length in lengths:
        base = {name: found.get((name, length)) for name in ("full", "window")}
        for label in labels:
            rec = {"method": label, "length": length}
            if (label, length) in skipped:
                records.append({**rec, "prefill_s": None, "decode_s_per_token": None, "peak_mem_mb": None,
                                "skipped": skipped[(label, length)]})
                continue
            t = found.get((label, length))
            if t is None:
                continue
            rec.update({k: t[k] for k in fields if k in t})
            for name, ref in base.items():
                if ref is None or "error" in ref or "error" in t:
                    continue
                rec[f"prefill_speedup_vs_{name}"] = round(ref["prefill_s"] / t["prefill_s"], 3)
                rec[f"decode_speedup_vs_{name}"] = round(ref["decode_s_per_token"] / t["decode_s_per_token"], 3)
                if name == "full":
                    rec["decode_time_vs_full"] = round(t["decode_s_per_token"] / ref["decode_s_per_token"], 3)
                    rec["peak_mem_vs_full"] = round(t["peak_mem_mb"] / ref["peak_mem_mb"], 3)
            records.append(rec)
    return records


def llama_cpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def _main(argv: list[str]) -> None:
    spec = json.loads(argv[0])
    out = measure_llama_cpp(spec) if spec.get("llama_cpp") else measure(spec)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
