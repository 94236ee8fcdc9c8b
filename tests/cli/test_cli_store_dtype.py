"""`--store-dtype` / LONGDOC_STORE_DTYPE on the tiny model: the format reaches the stored entry, `ask` reuses an
entry of its own format and replaces one of another, bad values are one line naming the allowed ones."""

from __future__ import annotations

import json

from cli_helpers import ask_json, entries


def manifest(store_dir) -> dict:
    [entry] = entries(store_dir)
    return json.loads((entry / "manifest.json").read_text())


def test_ingest_in_int8_then_ask_in_int8_reuses_and_the_default_replaces_it(cli_run, zorbia, store_dir):
    result = cli_run("ingest", zorbia, "--store-dtype", "int8")
    assert result.exit_code == 0 and result.stdout.startswith("Stored ") and "(int8)" in result.stdout, result.output
    assert manifest(store_dir)["kv_dtype"] == "int8"
    ls = cli_run("cache", "ls", model=False).stdout.splitlines()
    assert ls[0].split()[3] == "FORMAT" and ls[1].split()[4] == "int8"  # KEY TOKENS SIZE (2 words) FORMAT
    same = ask_json(cli_run, zorbia, "Q?", "--store-dtype", "int8")
    assert same["usage"]["ingest"]["reused"] is True
    default = ask_json(cli_run, zorbia, "Q?")  # float16: another format, read again and stored over it
    assert default["usage"]["ingest"]["reused"] is False and default["usage"]["ingest"]["stored"] is True
    assert manifest(store_dir)["kv_dtype"] == "float16"
    assert ask_json(cli_run, zorbia, "Q?")["usage"]["ingest"]["reused"] is True


def test_the_env_sets_the_format(cli_run, zorbia, store_dir, monkeypatch):
    monkeypatch.setenv("LONGDOC_STORE_DTYPE", "float32")
    assert cli_run("ingest", zorbia).exit_code == 0
    assert manifest(store_dir)["kv_dtype"] == "float32"
    assert cli_run("ingest", zorbia, "--store-dtype", "float32").stdout.startswith("Already stored")


def test_bad_values_are_one_line_naming_the_allowed_ones(cli_run, zorbia, store_dir, monkeypatch):
    option = cli_run("ask", zorbia, "Q?", "--store-dtype", "fp8")
    assert option.exit_code == 2 and "'fp8'" in option.stderr  # click's usage error (its wording varies by version)
    assert all(f"'{name}'" in option.stderr for name in ("bfloat16", "float16", "float32", "int8"))
    monkeypatch.setenv("LONGDOC_STORE_DTYPE", "fp8")
    env = cli_run("ask", zorbia, "Q?")
    assert env.exit_code == 2 and env.stdout == ""
    assert env.stderr == ("Error: Unknown stored KV format 'fp8' (env LONGDOC_STORE_DTYPE): use one of bfloat16, "
                          "float16, float32, int8.\n")
    assert entries(store_dir) == []


def test_float16_past_its_range_is_stored_in_bfloat16_and_reused(cli_run, zorbia, store_dir, monkeypatch):
    monkeypatch.setattr("longdoc.store._FP16_MAX", 1e-3)  # as if the model's keys reached past 65504
    result = cli_run("ingest", zorbia, "--store-dtype", "float16")
    assert result.exit_code == 0, result.stderr
    assert manifest(store_dir)["kv_dtype"] == "bfloat16" and manifest(store_dir)["kv_fallback"] is True
    answer = ask_json(cli_run, zorbia, "Q?", "--store-dtype", "float16")
    assert answer["answer"] and answer["usage"]["ingest"]["reused"] is True  # the fallback entry is a hit
