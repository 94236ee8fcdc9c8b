"""Hugging Face Hub model ids (`-m Qwen/Qwen2.5-1.5B-Instruct`), downloaded through `huggingface_hub` into its
usual cache (`$HF_HUB_CACHE`, else `~/.cache/huggingface/hub`) with its progress bars, exactly as transformers,
vLLM and `hf download` do: a model already downloaded by any of them is found, offline included
(`HF_HUB_OFFLINE=1` reads `refs/<revision>` and `snapshots/<commit>/` only).

Only what loading needs is fetched: configs, tokenizer files and safetensors weights (a repository that has only
`.bin` weights gets those instead). Every failure is one line naming the id, what went wrong (no network, no such
id or revision, gated) and how to point longdoc at a local copy instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ModelError

_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*$")
TOKENIZER_AND_CONFIG = ["*.json", "*.model", "*.txt", "*.tiktoken", "*.jinja"]


def is_hub_id(source: str) -> bool:
    """`org/name` that is not an existing path and not a .gguf file name (`./org/name` is always a path)."""
    return bool(_ID.match(source)) and not Path(source).expanduser().exists() and not source.lower().endswith(".gguf")


def snapshot(repo_id: str, revision: str | None = None) -> Path:
    """The local folder of `repo_id` at `revision` (a branch, tag or commit; None: `main`), downloading what is
    missing. Raises ModelError (one line) when it cannot be had."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars

    at = f"{repo_id}@{revision}" if revision else repo_id
    local = f"or download it where there is network (`hf download {repo_id}` fills the same cache) or pass a local folder (-m PATH)"
    if not os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") and are_progress_bars_disabled():
        enable_progress_bars()  # transformers' loader turns them off process-wide; a download should show them
    cached = _cached_snapshot(repo_id, revision) if _offline() else None
    if cached is not None:  # offline: read the cache layout directly (older huggingface_hub asks the API first)
        return cached
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=TOKENIZER_AND_CONFIG + ["*.safetensors"]))
        if not _has_weights(folder):
            folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=TOKENIZER_AND_CONFIG + ["*.bin"]))
    except GatedRepoError:
        raise ModelError(f"Model {at} is gated on the Hugging Face Hub: accept its licence on its page and log in "
                         f"(`hf auth login`), {local}.") from None
    except RevisionNotFoundError:
        raise ModelError(f"Model {repo_id} has no revision {revision!r} on the Hugging Face Hub: give a branch, "
                         f"tag or commit it has (--revision), {local}.") from None
    except RepositoryNotFoundError:
        raise ModelError(f"No model {repo_id} on the Hugging Face Hub (or it is private: log in with `hf auth "
                         f"login`); check the spelling, {local}.") from None
    except LocalEntryNotFoundError:
        why = ("HF_HUB_OFFLINE is set" if _offline() else "no network was reachable")
        raise ModelError(f"Model {at} is not in the local Hugging Face cache and {why}: connect and retry, "
                         f"{local}.") from None
    except (HfHubHTTPError, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelError(f"Could not download model {at} from the Hugging Face Hub ({first}): retry, {local}.") from None
    if not (folder / "config.json").is_file():
        raise ModelError(f"Model {at} has no config.json (a GGUF-only repository?): download its .gguf file and "
                         "pass it with -m FILE.gguf.")
    return folder


def _cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The snapshot folder of `repo_id` at `revision` in the local hub cache, read from its documented layout
    (`models--org--name/refs/<branch or tag>` holds a commit; `snapshots/<commit>/` its files), or None."""
    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    rev = revision or "main"
    ref = repo / "refs" / rev
    commit = ref.read_text().strip() if ref.is_file() else rev
    folder = repo / "snapshots" / commit
    return folder if (folder / "config.json").is_file() else None


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors"))


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)
