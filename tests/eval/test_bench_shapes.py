"""`longdoc bench --shape`: random-weight models of named shapes (Llama-2-7B, Llama-3-8B, tiny), full attention
against LongHeads with and without KV offload, as ratios. The 7B/8B shapes are for CUDA (scripts/gpu_check.sh);
here their configs are checked and the tiny shape runs end to end on the CPU."""

import json

import pytest
from click.testing import CliRunner

from longdoc.cli.main import cli
from longdoc.eval.bench import SHAPES, shape_config


@pytest.mark.parametrize("name, kv_heads, trained", [("llama2-7b", 32, 4096), ("llama3-8b", 8, 8192)])
def test_paper_shapes_are_the_real_models_shapes(name, kv_heads, trained):
    cfg = shape_config(name)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (4096, 32, 32)
    assert cfg.num_key_value_heads == kv_heads and cfg.max_position_embeddings == trained
    assert cfg.head_dim == 128


def test_bench_on_the_tiny_shape_with_offload_and_ratios(tmp_path):
    out = tmp_path / "bench.json"
    methods = "full,longheads,longheads[offload=cpu]"
    r = CliRunner().invoke(cli, ["bench", "--shape", "tiny", "--device", "cpu", "--lengths", "200",
                                 "--methods", methods, "--decode-tokens", "2", "--chunk-size", "16", "--chunks", "4",
                                 "--threads", "1", "--json", str(out), "--png", str(tmp_path / "b.png")],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["model"] == "tiny (random weights)"
    recs = {x["method"]: x for x in data["results"]}
    assert set(recs) == set(methods.split(","))
    full = recs["full"]
    for label in ("longheads", "longheads[offload=cpu]"):
        rec = recs[label]
        assert "error" not in rec, rec
        assert rec["decode_time_vs_full"] == pytest.approx(rec["decode_s_per_token"] / full["decode_s_per_token"],
                                                           rel=0.02)
        assert rec["peak_mem_vs_full"] == pytest.approx(rec["peak_mem_mb"] / full["peak_mem_mb"], rel=0.02)
    assert data["config"]["methods"]["longheads[offload=cpu]"]["offload"] == "cpu"


def test_cuda_device_without_cuda_is_one_line(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = CliRunner().invoke(cli, ["bench", "--shape", "tiny", "--device", "cuda", "--lengths", "200"])
    assert r.exit_code != 0 and "no CUDA device" in r.output and "Traceback" not in r.output
    assert "tiny" in SHAPES
