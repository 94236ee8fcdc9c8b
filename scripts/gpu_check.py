"""The one device run of issue 15: the CUDA tests and the speed/memory table at Llama-2-7B shape, in <= 10 minutes.

    python scripts/gpu_check.py            on a lent GPU: writes under $OUT (or ./gpu_out)
    python scripts/gpu_check.py --dry      the same steps on the CPU with the tiny shape (what CI can check)

Writes env.json (versions, device), tests.txt (pytest --device cuda on the engine tests), bench.json (every
trial: `longdoc bench`'s result file), bench.md (a table of the records with their ratios to full attention) and
summary.json (the issue's three targets, each met / not met / not measured). Every step has its own time limit and
the bench stops starting measurements past the deadline, so a slow step costs its own result, not the others'.
Needs only torch and transformers (no click, no network); pytest for the tests step.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GPU = dict(device="cuda", shape="llama2-7b", passes=[("full,longheads", [4096, 32768, 131072]),
                                                   ("full,longheads[offload=cpu]", [131072]),
                                                   ("full,longheads", [16384])],
           common={}, decode_tokens=16, tests=["tests/longheads", "tests/eval/test_bench_shapes.py"],
           test_timeout=200, measure_timeout=150, deadline_s=540)
DRY = dict(device="cpu", shape="tiny", passes=[("full,longheads", [192]), ("full,longheads[offload=cpu]", [192]),
                                               ("full,longheads", [160])],
           common={"chunk_size": 16, "chunks": 4}, decode_tokens=2,
           tests=["tests/longheads/test_no_host_sync.py::test_the_recorder_sees_host_waits"],
           test_timeout=120, measure_timeout=120, deadline_s=300)
# the targets (7B shape, bf16): (name, method, length, field, comparison, bound)
TARGETS = [("decode at 32k: LongHeads <= 0.5x full attention's time per token", "longheads", 32768,
            "decode_time_vs_full", "<=", 0.5),
           ("prefill at 128k: LongHeads >= 3x faster than full attention", "longheads", 131072,
            "prefill_speedup_vs_full", ">=", 3.0),
           ("128k with offload: peak GPU memory <= 24 GB", "longheads[offload=cpu]", 131072, "peak_mem_gb", "<=", 24.0)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry", action="store_true", help="tiny shape on the CPU, short lengths")
    ap.add_argument("--out", default=os.environ.get("OUT") or "gpu_out")
    ap.add_argument("--skip-tests", action="store_true")
    args = ap.parse_args(argv)
    plan = DRY if args.dry else GPU
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    start = time.monotonic()
    env = environment()
    (out / "env.json").write_text(json.dumps(env, indent=1))
    print(json.dumps(env), flush=True)
    if plan["device"] == "cuda" and not env["cuda"]:
        print("no CUDA device: run with --dry on a CPU machine", file=sys.stderr)
        return 2
    if not args.skip_tests:
        run_tests(plan, out, env)
    records = run_bench_passes(plan, out, start)
    table = markdown(records)
    (out / "bench.md").write_text(table)
    print(table, flush=True)
    summary = {"targets": targets(records, plan), "seconds": round(time.monotonic() - start, 1), "dry": args.dry}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1), flush=True)
    return 0


def environment() -> dict:
    import torch
    import transformers

    cuda = torch.cuda.is_available()
    return {"torch": torch.__version__, "transformers": transformers.__version__, "cuda": cuda,
            "gpu": torch.cuda.get_device_name(0) if cuda else None,
            "gpu_mem_gb": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
            "flash_attn": importlib.util.find_spec("flash_attn") is not None,
            "accelerate": importlib.util.find_spec("accelerate") is not None,
            "pytest": importlib.util.find_spec("pytest") is not None}


def run_tests(plan: dict, out: Path, env: dict) -> None:
    if not env["pytest"]:
        (out / "tests.txt").write_text("pytest is not installed here: tests not run\n")
        return
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--device", plan["device"], *plan["tests"]]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=plan["test_timeout"])
        text = f"$ {' '.join(cmd)}\nexit {proc.returncode}\n{proc.stdout[-20000:]}\n{proc.stderr[-5000:]}"
    except subprocess.TimeoutExpired as e:
        text = f"$ {' '.join(cmd)}\ntimed out after {plan['test_timeout']} s\n{(e.stdout or b'')[-20000:]!r}"
    (out / "tests.txt").write_text(text)
    print(text.splitlines()[1], "|", (text.strip().splitlines() or [""])[-1], flush=True)


def run_bench_passes(plan: dict, out: Path, start: float) -> list[dict]:
    from longdoc.eval.bench import run_bench, shape_config
    from longdoc.eval.machine import machine_info
    from longdoc.eval.methods import parse_methods
    from longdoc.eval.results import ResultsFile

    model_config = shape_config(plan["shape"])
    records: list[dict] = []
    for methods_spec, lengths in plan["passes"]:
        left = plan["deadline_s"] - (time.monotonic() - start)
        if left < 30:
            print(f"deadline: {methods_spec} at {lengths} not measured", flush=True)
            break
        methods = parse_methods(methods_spec)
        results = ResultsFile(out / "bench.json", task="bench", model=f"{plan['shape']} (random weights)",
                              machine=machine_info(), config={"methods": {}, "shape": plan["shape"],
                                                              "decode_tokens": plan["decode_tokens"]})
        records = run_bench(None, model_config, methods, lengths, results, decode_tokens=plan["decode_tokens"],
                            common=plan["common"], shape=plan["shape"], device=plan["device"], attn="sdpa",
                            timeout=min(plan["measure_timeout"], left), on_trial=_show)
    return json.loads((out / "bench.json").read_text())["results"] if (out / "bench.json").exists() else records


def _show(t: dict) -> None:
    keys = ("method", "length", "prefill_s", "decode_s_per_token", "peak_mem_mb", "error")
    print(json.dumps({k: t[k] for k in keys if k in t}), flush=True)


def markdown(records: list[dict]) -> str:
    cols = ["method", "length", "prefill_s", "decode_s_per_token", "peak_mem_mb", "prefill_speedup_vs_full",
            "decode_time_vs_full", "peak_mem_vs_full", "error"]
    rows = sorted(records, key=lambda r: (r.get("length", 0), str(r.get("method"))))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def targets(records: list[dict], plan: dict) -> list[dict]:
    found = {(r.get("method"), r.get("length")): r for r in records}
    out = []
    for name, method, length, field, op, bound in TARGETS:
        if plan is DRY:  # the tiny shape's lengths stand in for the 7B ones: same fields, no verdict
            length = max(plan["passes"][0][1])
        rec = found.get((method, length)) or {}
        value = rec.get(field)
        if field == "peak_mem_gb" and rec.get("peak_mem_mb") is not None:
            value = round(rec["peak_mem_mb"] / 1024, 2)
        met = None if value is None or plan is DRY else (value <= bound if op == "<=" else value >= bound)
        out.append({"target": name, "method": method, "length": length, "field": field, "value": value,
                    "bound": f"{op} {bound}", "met": met})
    return out


if __name__ == "__main__":
    sys.exit(main())
