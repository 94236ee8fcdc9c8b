"""`longdoc models [FOLDER...]`: the models available locally (no download, no weights loaded)."""

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


@click.command()
@click.argument("folders", nargs=-1, type=click.Path())
@handle_errors
def models(folders):
    """List the embedded model, converted GGUF models, and any Hugging Face FOLDERS given."""
    from longdoc.errors import ModelError
    from longdoc.models import cache_dir, embedded_gguf, resolve

    rows = []
    try:
        gguf = embedded_gguf()
        rows.append(("smollm2 (default)", "embedded GGUF", gguf.stat().st_size, None, str(gguf)))
    except ModelError as e:
        rows.append(("smollm2 (default)", "missing", 0, None, str(e)))
    converted = cache_dir() / "models"
    if converted.is_dir():
        for d in sorted(converted.iterdir()):
            if (d / "complete").exists() and (d / "config.json").exists():
                info = _describe(d)
                rows.append((d.name, f"converted {info['type']}", info["size"], info["trained"], str(d)))
    for f in folders:
        kind, path = resolve(f)  # ModelError for a path that is not a model
        if kind == "hf":
            info = _describe(path)
            rows.append((path.name, f"hf {info['type']}, {info['layers']} layers", info["size"], info["trained"], str(path)))
        else:
            rows.append((path.name, "gguf", path.stat().st_size, None, str(path)))
    click.echo(f"{'NAME':<44}  {'KIND':<26}  {'SIZE':>9}  {'TRAINED':>7}  PATH")
    for name, kind, size, trained, path in rows:
        click.echo(f"{name[:44]:<44}  {kind[:26]:<26}  {human_size(size):>9}  {trained or '-':>7}  {path}")
