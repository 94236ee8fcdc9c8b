"""Load a model: a Hugging Face Hub id (`Qwen/Qwen2.5-1.5B-Instruct`, with a revision), a local Hugging Face
folder, a GGUF file, or the embedded default (SmolLM2-135M-Instruct, longdoc/embedded.py).

A hub id is downloaded through `huggingface_hub` into its usual cache (longdoc/hub.py). A GGUF file is
dequantised once (~20 s for 135M parameters) and stored as safetensors in the user cache folder; later loads
read that (~0.3 s). The store is written to a temporary folder and renamed into place, so an interrupted
conversion never leaves a half-written model behind. GGUF file types read (each tested on a tiny file written
with the `gguf` package, tests/test_models_gguf.py): F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K_M, Q5_K_M, Q6_K
(any file whose tensor types `gguf` can dequantise); a tensor type it cannot read is named in the error.

dtype: "auto" (the default) is float32 on CPU and bfloat16 on CUDA. On this project's CPU bf16 was measured
faster in prefill but slower in decode, with the answers of a 135M model drifting from fp32's (README,
"dtype"), so auto keeps fp32 on CPU; `--dtype bfloat16` is there for larger models where prefill dominates.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .embedded import embedded_gguf
from .errors import ModelError

DEFAULT_MODEL = "smollm2"
EMBEDDED_ALIASES = (None, "", DEFAULT_MODEL, "default")  # what names the embedded model, everywhere
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class LoadedModel:
    model: "torch.nn.Module"
    tokenizer: object
    name: str  # short, stable name (used in cache keys and metadata)
    source: str  # where it came from (a local path; for a hub id its snapshot folder, which names the commit)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("LONGDOC_CACHE_DIR") or user_cache_dir("longdoc"))


def canonical_source(source: str | None, revision: str | None = None) -> str | None:
    """One spelling per model: None for the embedded one, `hf://org/name@revision` for a hub id, else the
    absolute path ("./m" and "m" are one)."""
    from .hub import is_hub_id

    if source in EMBEDDED_ALIASES:
        return None
    if is_hub_id(source):
        return f"hf://{source}@{revision or 'main'}"
    return os.path.abspath(os.path.expanduser(source))


def resolve(source: str | None, revision: str | None = None) -> tuple[str, Path]:
    """Map a user's model argument to (kind, path): kind is 'gguf' or 'hf' (a folder with config.json).

    source: None / "smollm2" (embedded), a hub id `org/name`, a folder, or a .gguf file; revision: for a hub id
    only (branch, tag or commit). A hub id is downloaded when missing. Raises ModelError (one line)."""
    from .hub import is_hub_id, snapshot

    if source in EMBEDDED_ALIASES:
        _no_revision(revision, "the embedded model")
        return "gguf", embedded_gguf()
    if is_hub_id(source):
        return "hf", snapshot(source, revision)
    path = Path(source).expanduser()
    if not path.exists():
        raise ModelError(f"No model at {source}: give a Hugging Face Hub id (org/name), a local Hugging Face "
                         "folder, a .gguf file, or omit -m for the embedded model.")
    _no_revision(revision, source)
    if path.is_file() and path.suffix.lower() == ".gguf":
        return "gguf", path
    if path.is_dir() and (path / "config.json").exists():
        return "hf", path
    raise ModelError(f"{source} is neither a .gguf file nor a Hugging Face model folder (no config.json).")


def _no_revision(revision, what):
    if revision:
        raise ModelError(f"--revision {revision} applies to Hugging Face Hub ids only, not to {what}.")


def model_name(source: str | None, kind: str, path: Path, revision: str | None = None) -> str:
    """A short stable name: the hub id (`org--name`, `@revision` when given), else the file or folder name."""
    from .hub import is_hub_id

    if source not in EMBEDDED_ALIASES and is_hub_id(source):
        return source.replace("/", "--") + (f"@{revision}" if revision else "")
    return path.stem if kind == "gguf" else path.name


def resolve_device(device: str | None) -> torch.device:
    """None / "auto": cuda when available, else cpu. Raises ModelError for a device torch does not know or that
    is not present."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ModelError(f"Unknown device {device!r}: use cpu, cuda, cuda:N, mps or auto.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"--device {device}: no CUDA device is available to this torch build "
                         f"({torch.__version__}); use --device cpu.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ModelError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here.")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelError(f"--device {device}: MPS is not available here; use --device cpu.")
    return dev


def resolve_dtype(dtype: "torch.dtype | str | None", device: torch.device) -> torch.dtype:
    """None / "auto": float32 on CPU (see the module docstring), bfloat16 on CUDA. Strings: one of DTYPES
    ("fp32", "bf16", "fp16" accepted too). Raises ModelError for anything else."""
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ModelError(f"dtype {dtype} is not supported: use one of {', '.join(DTYPES)}.")
        return dtype
    aliases = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16", "float": "float32"}
    name = aliases.get(str(dtype).lower(), str(dtype).lower()) if dtype is not None else "auto"
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in DTYPES:
        raise ModelError(f"Unknown dtype {dtype!r}: use one of {', '.join(DTYPES)}.")
    return getattr(torch, name)


def load_model(source: str | None = None, *, revision: str | None = None, dtype: torch.dtype | str | None = None,
               device: str | None = None) -> LoadedModel:
    """Load a model and tokenizer, ready for `enable_longheads`.

    source: see `resolve`; revision: hub ids only; dtype: see `resolve_dtype`; device: see `resolve_device`.
    Raises ModelError (one line) for a source that cannot be found, downloaded or read."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    kind, path = resolve(source, revision)
    hf_logging.disable_progress_bar()  # our own progress goes to stderr through rich; keep theirs quiet
    folder = converted_folder(path) if kind == "gguf" else path
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dt, attn_implementation="sdpa")
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, KeyError, ImportError) as e:
        raise ModelError(f"Could not load a model from {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    model.to(dev).eval()
    return LoadedModel(model=model, tokenizer=tokenizer, name=model_name(source, kind, path, revision), source=str(path))


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


def gguf_file_type(gguf: Path) -> tuple[str, list[str]]:
    """(file type, tensor types) of a GGUF file, e.g. ("Q4_K_M", ["F32", "Q4_K", "Q6_K"]): the file type from
    `general.file_type` ("?" when absent), the distinct tensor types in the file. Raises ModelError for a file
    the `gguf` reader cannot parse."""
    from gguf import GGUFReader, LlamaFileType

    try:
        reader = GGUFReader(str(gguf))
    except Exception as e:  # the reader raises ValueError, struct errors, KeyError on unknown enum values...
        raise ModelError(f"Could not read GGUF file {gguf}: {_first_line(e)}") from None
    field = reader.fields.get("general.file_type")
    file_type = "?"
    if field is not None:
        value = int(field.parts[field.data[0]][0])
        try:
            file_type = LlamaFileType(value).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            file_type = f"type {value}"
    tensor_types = sorted({t.tensor_type.name for t in reader.tensors})
    return file_type, tensor_types


def check_gguf_types(gguf: Path) -> None:
    """Raise ModelError naming the tensor type(s) of `gguf` that the `gguf` package cannot dequantise (what
    transformers' GGUF loader uses), before the slow load starts."""
    import numpy as np
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import dequantize

    file_type, tensor_types = gguf_file_type(gguf)
    unreadable = []
    for name in tensor_types:
        qtype = GGMLQuantizationType[name]
        block, size = GGML_QUANT_SIZES[qtype]
        try:
            dequantize(np.zeros((1, size), dtype=np.uint8), qtype)
        except (NotImplementedError, KeyError, ValueError):
            unreadable.append(name)
    if unreadable:
        raise ModelError(f"GGUF file {gguf.name} (file type {file_type}) has tensors of type "
                         f"{', '.join(unreadable)}, which the gguf reader cannot dequantise: convert it to one of "
                         "F16, BF16, Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_0, Q4_1 (llama.cpp's llama-quantize), or "
                         "use the Hugging Face folder.")


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _convert_gguf(gguf: Path, out: Path) -> None:
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_gguf_types(gguf)
    try:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as e:  # the gguf reader raises many kinds of errors for files it cannot parse
        raise ModelError(f"Could not read GGUF file {gguf}: {_first_line(e)}") from None
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # weights are dequantised now: the saved model is plain float
    config.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    save_model(model, str(out / "model.safetensors"), metadata={"format": "pt"})
