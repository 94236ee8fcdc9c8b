"""`longdoc ask` on the tiny model: streaming, JSON, usage, citations, and reuse of the stored ingest."""

from __future__ import annotations

import json

from cli_helpers import ask_json, entries


def test_ask_streams_an_answer_and_stores_the_document(cli_run, zorbia, store_dir):
    result = cli_run("ask", zorbia, "What is the capital of Zorbia?", "--max-tokens", "6")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # not a terminal: no progress bar, no notes
    answer = ask_json(cli_run, zorbia, "What is the capital of Zorbia?")  # 6 tokens too
    assert answer["answer"] and result.stdout == answer["answer"] + "\n"  # streamed: the answer, then a newline
    [entry] = entries(store_dir)
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["sources"] == [str(zorbia)] and manifest["tokens"] > 100


def test_second_ask_reuses_the_stored_ingest_and_answers_the_same(cli_run, zorbia, store_dir):
    first = ask_json(cli_run, zorbia, "What is the capital of Zorbia?")
    second = ask_json(cli_run, zorbia, "What is the capital of Zorbia?")
    assert first["usage"]["ingest"]["reused"] is False and first["usage"]["ingest"]["stored"] is True
    assert second["usage"]["ingest"]["reused"] is True
    assert second["usage"]["cached_tokens"] == second["usage"]["ingest"]["tokens"]
    assert second["answer"] == first["answer"]
    other = ask_json(cli_run, zorbia, "Which fact is on page 3?")  # another question: same stored prefix
    assert other["usage"]["ingest"]["reused"] is True
    assert len(entries(store_dir)) == 1


def test_different_settings_get_their_own_ingest(cli_run, zorbia, store_dir):
    ask_json(cli_run, zorbia, "Q?")
    ask_json(cli_run, zorbia, "Q?", "--format", "completion")
    ask_json(cli_run, zorbia, "Q?", "--system", "Be brief.")
    assert len(entries(store_dir)) == 3


def test_no_store_leaves_the_cache_empty(cli_run, zorbia, store_dir):
    result = cli_run("ask", zorbia, "Q?", "--no-store", "--max-tokens", "3")
    assert result.exit_code == 0, result.output
    assert entries(store_dir) == []


def test_no_stream_and_usage_on_stderr(cli_run, zorbia):
    result = cli_run("ask", zorbia, "Q?", "--no-stream", "-u", "--max-tokens", "4")
    assert result.exit_code == 0, result.output
    assert "Usage:" not in result.stdout
    assert "Usage: document" in result.stderr and "tok/s" in result.stderr and "answer 4 tokens" in result.stderr


def test_json_output_is_one_object(cli_run, zorbia):
    obj = ask_json(cli_run, zorbia, "Q?")
    assert set(obj) >= {"answer", "model", "format", "sources", "usage"}
    assert obj["usage"]["completion_tokens"] == 6 and obj["usage"]["finish_reason"] == "length"


def test_cite_names_pages_with_shares(cli_run, zorbia):
    result = cli_run("ask", zorbia, "What is the capital of Zorbia?", "--cite", "--max-tokens", "6")
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("Sources (share")[1].strip().splitlines()[1:]
    shares = [float(line.rsplit(None, 1)[1].rstrip("%")) for line in lines]
    assert any("zorbia.pdf p. " in line for line in lines)
    assert 0 < sum(shares) <= 100.5 and shares == sorted(shares, reverse=True)
    obj = ask_json(cli_run, zorbia, "What is the capital of Zorbia?", "--cite")
    assert obj["citations"] and all(0 < c["share"] <= 1 for c in obj["citations"])


def test_cite_when_the_document_fits_in_the_window(cli_run, tmp_path):
    doc = tmp_path / "short.txt"
    doc.write_text("A short note.\n")
    result = cli_run("ask", doc, "Q?", "--cite", "--max-tokens", "2")
    assert result.exit_code == 0, result.output
    assert "fits in the 64-token attention window" in result.stdout


def test_several_inputs_and_stdin(cli_run, tmp_path):
    (tmp_path / "a.md").write_text("# Notes\nThe code word is apricot.\n")
    result = cli_run("ask", tmp_path / "a.md", "-", "What is the code word?", "--json", "--max-tokens", "3",
                     input="Piped notes: the colour is teal.\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sources"] == [str(tmp_path / "a.md"), "<stdin>"]


def test_window_not_a_multiple_of_the_chunk_size(cli_run, zorbia, store_dir):
    result = cli_run("ask", zorbia, "Q?", "--window", "100")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: window 100 is not a multiple of the chunk size 16: use window 96")
    assert entries(store_dir) == []


def test_a_corrupted_stored_ingest_is_rebuilt_not_used(cli_run, zorbia, store_dir):
    first = ask_json(cli_run, zorbia, "What is the capital of Zorbia?")
    [entry] = entries(store_dir)
    tensors = entry / "cache.safetensors"
    data = bytearray(tensors.read_bytes())
    data[len(data) // 2] ^= 0x55  # one flipped byte in the keys
    tensors.write_bytes(bytes(data))
    again = ask_json(cli_run, zorbia, "What is the capital of Zorbia?")
    assert again["usage"]["ingest"]["reused"] is False and again["usage"]["ingest"]["stored"] is True
    assert again["answer"] == first["answer"]
    assert ask_json(cli_run, zorbia, "What is the capital of Zorbia?")["usage"]["ingest"]["reused"] is True


def test_cache_commands(cli_run, zorbia, store_dir):
    ask_json(cli_run, zorbia, "Q?")
    ls = cli_run("cache", "ls", model=False)
    assert ls.exit_code == 0 and "zorbia.pdf" in ls.stdout and "1 stored" in ls.stdout and " kB" in ls.stdout
    key = entries(store_dir)[0].name
    bad = cli_run("cache", "rm", "zzzz", model=False)
    assert bad.exit_code == 3 and bad.stderr.startswith("Error: No stored ingest matches 'zzzz'")
    rm = cli_run("cache", "rm", key[:8], model=False)
    assert rm.exit_code == 0 and rm.stdout.startswith(f"Removed {key[:12]}") and entries(store_dir) == []
    ask_json(cli_run, zorbia, "Q?")
    clear = cli_run("cache", "clear", model=False)
    assert clear.stdout.startswith("Removed 1 stored ingest") and entries(store_dir) == []


def test_ingest_then_ask_reuses(cli_run, zorbia, store_dir):
    result = cli_run("ingest", zorbia)
    assert result.exit_code == 0 and result.stdout.startswith("Stored "), result.output
    assert cli_run("ingest", zorbia).stdout.startswith("Already stored")
    assert ask_json(cli_run, zorbia, "Q?")["usage"]["ingest"]["reused"] is True


def test_chat_answers_each_line_until_exit_and_keeps_the_conversation(cli_run, zorbia, store_dir):
    import re

    result = cli_run("chat", zorbia, "--max-tokens", "3", "-u", input="First question?\n\nSecond?\nexit\nnever asked\n")
    assert result.exit_code == 0, result.output
    answers = [a for a in result.stdout.split("\n\n") if a.strip()]
    assert len(answers) == 2
    usage = result.stderr.splitlines()
    assert len(usage) == 2 and "document" in usage[0] and "document" not in usage[1]
    document = int(re.search(r"document ([\d,]+) tokens", usage[0]).group(1).replace(",", ""))
    (p1, new1), (p2, new2) = [map(lambda x: int(x.replace(",", "")), re.search(r"prompt ([\d,]+) tokens \(([\d,]+) new\)", u).groups())
                              for u in usage]
    assert p2 > p1  # a shorter question, a longer prompt: the first turn (question and answer) is in it
    assert new2 < p2 - document + 16  # ...while the document's prefill is reused (to a chunk)
    assert len(entries(store_dir)) == 1


def test_models_lists_the_embedded_model_and_given_folders(cli_run, tiny_model_dir, tmp_path):
    result = cli_run("models", tiny_model_dir, model=False)
    assert result.exit_code == 0
    rows = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert rows[0] == "smollm2" and "(default)" in result.stdout and "hf llama, 2 layers" in result.stdout
    bad = cli_run("models", tmp_path / "nothing", model=False)
    assert bad.exit_code == 4 and bad.stderr.startswith("Error: No model at")


def test_show_writes_a_png_of_the_selections(cli_run, zorbia, tmp_path):
    out = tmp_path / "fig.png"
    result = cli_run("show", zorbia, "What is the capital of Zorbia?", "--png", out, "--max-tokens", "4")
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert f"Wrote {out}" in result.stderr


def test_figure_grids_count_selected_chunks_per_layer_and_head():
    import torch

    from longdoc.longheads.config import LongHeadsConfig
    from longdoc.longheads.layout import Selection
    from longdoc.qa.figure import chunk_sources, selection_grids

    cfg = LongHeadsConfig(chunk_size=4, chunks=5, keep_previous=True)  # slots: first, 2 selected, previous, current
    sel = [Selection(1, torch.tensor([40, 41]),
                     torch.tensor([[[[0, 2, 5, 8, 9], [0, 2, 3, 9, 10]], [[0, 1, 4, 8, 9], [0, 4, 6, 9, 10]]]]))]
    top, counts = selection_grids(sel, 40, cfg, n_layers=2, n_heads=2, n_chunks=11)
    assert top.tolist() == [[-1, -1], [2, 4]]
    assert counts[1].tolist() == [0, 1, 2, 1, 2, 1, 1, 0, 0, 0, 0] and counts[0].sum() == 0
    assert chunk_sources(["p1"] * 5 + ["p2"] * 4, 4) == ["p1", "p2", "p2"]


def test_reread_answers_from_the_chosen_chunks_and_cites_them(cli_run, zorbia):
    obj = ask_json(cli_run, zorbia, "What is the capital of Zorbia?", "--reread", "--cite")
    assert obj["reread"]["chunks"] and obj["reread"]["tokens"] <= 64
    assert obj["citations"] and abs(sum(c["share"] for c in obj["citations"]) - 1) < 0.01
    assert ask_json(cli_run, zorbia, "What is the capital of Zorbia?", "--no-reread")["reread"] is None
    assert ask_json(cli_run, zorbia, "What is the capital of Zorbia?")["reread"] == obj["reread"]  # the default


def test_chunk_spans_read_the_chosen_chunks_as_they_are(cli_run, zorbia):
    q = "What is the capital of Zorbia?"
    peak = ask_json(cli_run, zorbia, q, "--peak-spans")["reread"]
    whole = ask_json(cli_run, zorbia, q, "--chunk-spans")["reread"]
    assert whole["chunks"] == peak["chunks"] and whole["tokens"] == peak["tokens"]  # same chunks, same budget
    l = whole["spans"][0][1] - whole["spans"][0][0]
    assert whole["spans"] == [[c * l, (c + 1) * l] for c in whole["chunks"]]
    assert all(b - a == l and abs(a - c * l) <= l // 2 for c, (a, b) in zip(peak["chunks"], peak["spans"]))
