"""README tables and target checks computed from result files."""

from longdoc.eval.bench import with_ratios
from longdoc.eval.report import bench_targets, markdown, quality_targets

MACHINE = {"cpu": "Test CPU", "cores": 2, "torch_threads": 2, "torch": "2.x", "transformers": "5.x"}


def _bench_data():
    trials = []
    for n, full, lh, win in [(8192, 29.0, 20.0, 19.0), (16384, 95.0, 40.0, 38.0), (32768, 330.0, 85.0, 80.0),
                             (65536, 1300.0, 180.0, 170.0)]:
        trials += [dict(method="full", length=n, prefill_s=full, decode_s_per_token=0.08 * n / 4096, peak_mem_mb=900),
                   dict(method="window", length=n, prefill_s=win, decode_s_per_token=0.05, peak_mem_mb=800),
                   dict(method="longheads", length=n, prefill_s=lh, decode_s_per_token=0.06, peak_mem_mb=850)]
    records = with_ratios(trials, ["full", "window", "longheads"], [8192, 16384, 32768, 65536])
    return {"task": "bench", "model": "m", "machine": MACHINE, "config": {"decode_tokens": 16}, "results": records}


def test_ratios_are_baseline_time_over_method_time():
    recs = {(r["method"], r["length"]): r for r in _bench_data()["results"]}
    lh = recs[("longheads", 32768)]
    assert lh["prefill_speedup_vs_full"] == round(330 / 85, 3)
    assert lh["prefill_speedup_vs_window"] == round(80 / 85, 3)
    assert recs[("full", 8192)]["prefill_speedup_vs_full"] == 1.0


def test_bench_targets_use_the_issue_thresholds():
    got = {name: (value, met) for name, value, met in bench_targets(_bench_data())}
    assert got["prefill at 32k >= 3x faster than full"] == ("3.88", True)
    assert got["prefill 32k/16k time ratio <= 2.2"] == ("2.12", True)
    assert got["prefill at 64k >= 5x faster than full"][1] is True
    assert got["decode 64k/8k per-token ratio <= 1.3"] == ("1.00", True)
    assert got["peak memory at 128k <= 24 GiB"] == ("not measured", None)


def test_markdown_names_the_machine_and_every_method():
    text = markdown(_bench_data())
    assert "Test CPU (2 cores, torch threads 2)" in text
    assert text.count("| 32768 |") == 3 and "`longheads`" in text


def test_passkey_targets_need_enough_trials():
    results = [dict(method="longheads", length=4096, trials=10, correct=10, key_logprob=-1.0, hit_rate=0.9),
               dict(method="longheads", length=32768, trials=10, correct=10, key_logprob=-1.0, hit_rate=0.9),
               dict(method="longheads", length=8192, trials=10, correct=9, key_logprob=-1.0, hit_rate=0.9)]
    got = {n: met for n, _, met in quality_targets({"task": "passkey", "results": results})}
    assert got["passkey 100% at 4k (10+ trials)"] is True
    assert got["passkey 100% at 8k (10+ trials)"] is False
    assert got["passkey 100% at 32k (50+ trials)"] is False  # 10 of the 50 trials asked for
    assert got["passkey 100% at 64k (10+ trials)"] is None


def test_random_weight_shape_path_measures_in_process(monkeypatch):
    """The --shape path (used for Llama-2-7B on CUDA) on a tiny shape: builds, switches method, times."""
    from longdoc.eval import bench

    monkeypatch.setitem(bench.SHAPES, "tiny-test", dict(vocab_size=512, hidden_size=64, intermediate_size=128,
                                                         num_hidden_layers=2, num_attention_heads=4,
                                                         num_key_value_heads=4, max_position_embeddings=256))
    cfg = {"chunk_size": 16, "chunks": 4}
    out = bench.measure({"shape": "tiny-test", "device": "cpu", "length": 200, "decode_tokens": 2,
                         "config": {**cfg, "selection": "longheads"}})
    assert out["prefill_s"] > 0 and out["decode_s_per_token"] > 0 and out["device"] == "cpu"
    assert out["mem_kind"] == "rss_high_water" and out["peak_mem_mb"] >= out["load_mem_mb"]


def test_suite_targets_compare_each_task_with_full_attention_at_4k():
    from longdoc.eval.report import SUITE_READER as R
    from longdoc.eval.suite import aggregate

    def trials(task, method, reader, length, k, n):
        return [dict(task=task, method=method, reader=reader, length=length, correct=i < k, score=float(i < k),
                     gold_logprob=-1.0, hit_rate=None) for i in range(n)]

    ts = (trials("qa", "full", "direct", 4096, 10, 20) + trials("passkey", "full", "direct", 4096, 12, 20)
          + trials("qa", "longheads", R, 16384, 11, 20) + trials("passkey", "longheads", R, 16384, 19, 20)
          + trials("passkey", "longheads", R, 32768, 10, 10)
          + trials("qa", "longheads", "reread-2048", 32768, 20, 20))  # another reader: not the default's row
    data = {"task": "suite", "model": "m", "machine": MACHINE, "config": {}, "results": aggregate(ts)}
    got = {name: (value, met) for name, value, met in quality_targets(data)}
    assert got[f"qa at 16k (longheads {R}) >= full attention at 4k"] == ("11/20 vs 10/20", True)
    assert got["passkey >= 95% at 16k (20+ trials)"] == ("19/20", True)
    assert got["passkey >= 95% at 32k (20+ trials)"] == ("10/10", False)  # too few trials to count
    assert got[f"qa at 32k (longheads {R}) >= full attention at 4k"] == ("not measured", None)
    md = markdown(data)
    assert "reading suite" in md and md.index("| 4096 | passkey") < md.index("| 16384 | passkey")
