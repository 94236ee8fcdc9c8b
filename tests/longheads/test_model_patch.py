"""LongHeads on tiny random-weight models of every supported family, through transformers' extension points.

Runs on the test device (`--device`, tests/devices.py): float32 on CPU; bf16 on CUDA, where two forward paths
over the same bf16 weights (other kernels, other summation orders) agree to BF16 below on logits of size ~1.
"""

import pytest
import torch
from transformers import DynamicCache

from longdoc import LongHeadsCache, LongHeadsConfig, disable_longheads, enable_longheads
from longdoc.errors import ConfigError
from longdoc.generate import prefill
from longdoc.longheads.plan import ForwardPlan, cache_kwargs

from tiny_models import make_tiny_llama

CFG = LongHeadsConfig(chunk_size=8, chunks=4, exact_tail=5)  # window 32 on a model trained to 256
BF16 = (5e-2, 5e-2)  # (atol, rtol) of logits in bf16


@pytest.fixture
def close(dev):
    """assert_close at atol=1e-5, rtol=1e-4 in float32, BF16 in bf16."""
    def check(actual, expected):
        dev.close(actual, expected, atol=1e-5, rtol=1e-4, bf16=BF16)
    return check


@pytest.fixture(params=[("llama", 4, 4), ("llama", 4, 2), ("mistral", 4, 2), ("qwen2", 4, 2)],
                ids=["llama-MHA", "llama-GQA", "mistral-GQA", "qwen2-GQA"])
def tiny(request, dev):
    model_type, h, hk = request.param
    return dev.model(make_tiny_llama(n_heads=h, n_kv_heads=hk, layers=2, model_type=model_type))


@torch.inference_mode()
def test_inside_the_window_equals_the_unpatched_model(tiny, close):
    ids = torch.randint(0, 512, (1, 25)).to(tiny.device)
    ref_cache = DynamicCache()
    ref = tiny(ids, **cache_kwargs(tiny, ref_cache)).logits
    ref_steps = [tiny(ids[:, :1] * 0 + t, **cache_kwargs(tiny, ref_cache)).logits for t in (3, 7, 11)]
    enable_longheads(tiny, CFG)
    cache = LongHeadsCache()
    out = tiny(ids, **cache_kwargs(tiny, cache)).logits
    close(out, ref)
    for t, r in zip((3, 7, 11), ref_steps):  # decode steps, still inside the 32-token window
        close(tiny(ids[:, :1] * 0 + t, **cache_kwargs(tiny, cache)).logits, r)


@torch.inference_mode()
def test_plain_forward_works_with_no_extra_arguments(tiny, close):
    ids = torch.randint(0, 512, (1, 70)).to(tiny.device)
    enable_longheads(tiny, CFG)
    logits = tiny(ids).logits  # transformers makes its own DynamicCache: a one-shot forward needs nothing else
    assert logits.shape == (1, 70, 512) and torch.isfinite(logits).all()
    cached = tiny(ids, **cache_kwargs(tiny, LongHeadsCache())).logits
    close(logits, cached)


@torch.inference_mode()
def test_beyond_the_window_differs_and_stays_finite(tiny, close):
    ids = torch.randint(0, 512, (1, 120)).to(tiny.device)
    full = tiny(ids).logits
    enable_longheads(tiny, CFG)
    lh = tiny(ids, **cache_kwargs(tiny, LongHeadsCache())).logits
    close(lh[:, :32], full[:, :32])
    assert torch.isfinite(lh).all()
    assert (lh[:, 40:] - full[:, 40:]).abs().max() > 1e-3
    disable_longheads(tiny)
    torch.testing.assert_close(tiny(ids).logits, full)  # the same kernels again: bit-exact


@torch.inference_mode()
@pytest.mark.parametrize("block", [8, 16, 40])
def test_chunked_prefill_equals_one_shot(tiny, block, close):
    ids = torch.randint(0, 512, (1, 101)).to(tiny.device)
    enable_longheads(tiny, CFG)
    one = LongHeadsCache()
    one_logits = tiny(ids, logits_to_keep=1, **ForwardPlan(one, exact_from=101 - CFG.exact_tail).model_kwargs(tiny)).logits[:, -1]
    chunked = LongHeadsCache()
    chunked_logits = prefill(tiny, chunked, ids, block=block, exact_from=101 - CFG.exact_tail)
    close(chunked_logits, one_logits)
    # and the next decode step agrees too
    step = torch.tensor([[5]], device=tiny.device)
    close(tiny(step, **cache_kwargs(tiny, chunked)).logits,
                               tiny(step, **cache_kwargs(tiny, one)).logits)


@torch.inference_mode()
def test_the_forward_plan_carries_the_tail_and_the_records(tiny, close):
    """What a call asks of the attention travels in its ForwardPlan: the per-token tail changes the result,
    selections are recorded only into the plan's list, and a call without a plan behaves as before plans."""
    ids = torch.randint(0, 512, (1, 101)).to(tiny.device)
    enable_longheads(tiny, CFG)
    records = []
    tail = tiny(ids, logits_to_keep=1, **ForwardPlan(LongHeadsCache(), exact_from=96, record=records).model_kwargs(tiny))
    none = tiny(ids, logits_to_keep=1, **ForwardPlan(LongHeadsCache(), exact_from=101).model_kwargs(tiny))
    plain = tiny(ids, **cache_kwargs(tiny, LongHeadsCache()), logits_to_keep=1)  # no plan: the last exact_tail=5 queries
    close(plain.logits, tail.logits)
    assert (tail.logits - none.logits).abs().max() > 1e-4  # per-token selection of the last 5 queries mattered
    layers = {r.layer for r in records}
    assert layers == {0, 1} and all(r.chunks.shape[-1] == CFG.chunks for r in records)
    assert any(bool((r.positions == 100).any()) for r in records)  # the last query's own (token) group
    assert not hasattr(LongHeadsCache(), "exact_from") and not hasattr(LongHeadsCache(), "selections")


@torch.inference_mode()
def test_prefill_sizes_the_cache_once_for_prompt_and_answer(tiny, close):
    """Prefill reserves the prompt plus DECODE_HEADROOM: decoding the answer never reallocates the buffers
    (doubling at the first decode step copied the whole cache), and the results are those of a cache grown
    step by step."""
    from longdoc.generate import DECODE_HEADROOM, decode_one

    ids = torch.randint(0, 512, (1, 101)).to(tiny.device)
    enable_longheads(tiny, CFG)
    cache = LongHeadsCache()
    logits = prefill(tiny, cache, ids, block=40)
    bufs = [layer._kbuf for layer in cache.layers]
    assert all(b.shape[2] >= 101 + DECODE_HEADROOM for b in bufs)
    grown = LongHeadsCache()  # no hint: grows by doubling
    ref = tiny(ids[:, :40], **cache_kwargs(tiny, grown)).logits
    ref = tiny(ids[:, 40:80], **cache_kwargs(tiny, grown)).logits
    ref = tiny(ids[:, 80:], **cache_kwargs(tiny, grown)).logits[:, -1]
    close(logits, ref)
    for t in range(30):
        token = torch.tensor([[t + 3]], device=tiny.device)
        close(decode_one(tiny, cache, token), tiny(token, **cache_kwargs(tiny, grown)).logits[:, -1])
    assert all(layer._kbuf is b for layer, b in zip(cache.layers, bufs))


@torch.inference_mode()
def test_hf_generate_with_the_longheads_cache(tiny):
    from longdoc.generate import SamplingParams, stream

    class Tok:  # ids in, ids out: lets `stream` run on a model without a tokenizer
        eos_token_id = None

        def decode(self, ids, skip_special_tokens=True):
            return "".join(f"<{i}>" for i in ids)

    ids = torch.randint(0, 512, (1, 90)).to(tiny.device)
    enable_longheads(tiny, CFG)
    tiny.generation_config.eos_token_id = None
    tiny.generation_config.pad_token_id = 0
    out = tiny.generate(ids, **cache_kwargs(tiny, LongHeadsCache()), max_new_tokens=6, do_sample=False)
    ours = "".join(stream(tiny, Tok(), ids, SamplingParams(max_new_tokens=6)))
    assert ours == "".join(f"<{i}>" for i in out[0, 90:].tolist())


def test_padding_is_refused(tiny):
    enable_longheads(tiny, CFG)
    ids = torch.randint(0, 512, (2, 10)).to(tiny.device)
    mask = torch.ones(2, 10, dtype=torch.long, device=tiny.device)
    mask[1, :3] = 0
    with pytest.raises(ConfigError, match="padded"):
        tiny(ids, attention_mask=mask)


def test_incremental_decoding_needs_the_longheads_cache(tiny):
    enable_longheads(tiny, CFG)
    cache = DynamicCache()
    tiny(torch.randint(0, 512, (1, 10)).to(tiny.device), **cache_kwargs(tiny, cache))
    with pytest.raises(ConfigError, match="LongHeadsCache"):
        tiny(torch.tensor([[1]], device=tiny.device), **cache_kwargs(tiny, cache))


def test_window_larger_than_trained_length_is_refused(tiny):
    with pytest.raises(ConfigError, match="trained length 256"):
        enable_longheads(tiny, LongHeadsConfig(chunk_size=64, chunks=8))


def test_unsupported_model_type_is_refused():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50))
    with pytest.raises(ConfigError, match="not supported"):
        enable_longheads(model, CFG)


@torch.inference_mode()
def test_prefill_and_decode_pass_the_cache_under_the_keyword_the_forward_takes(tiny, close):
    """transformers 5.x deprecates `past_key_values` with a FutureWarning on every forward call: prefill and
    decode (LongHeads on and off) hand the cache over as `cache` where the model's forward has it
    (plan.cache_kwargs), so generating prints nothing; the logits are those of plain forward calls."""
    import inspect
    import warnings

    from longdoc.generate import decode_one
    from longdoc.prefix import new_cache

    takes_cache = "cache" in inspect.signature(type(tiny).forward).parameters
    assert list(cache_kwargs(tiny, None)) == ["cache" if takes_cache else "past_key_values"]
    ids = torch.randint(0, 512, (1, 50)).to(tiny.device)
    for on in (True, False):
        enable_longheads(tiny, CFG) if on else disable_longheads(tiny)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # any FutureWarning fails the test
            cache = new_cache(tiny)
            logits = prefill(tiny, cache, ids, block=16)
            step = decode_one(tiny, cache, logits.argmax(-1, keepdim=True))
        ref_cache = LongHeadsCache() if on else DynamicCache()  # plain forward calls, block by block
        ref = [tiny(ids[:, i : i + 16], **cache_kwargs(tiny, ref_cache)).logits[:, -1] for i in range(0, 50, 16)][-1]
        ref_step = tiny(logits.argmax(-1, keepdim=True), **cache_kwargs(tiny, ref_cache)).logits[:, -1]
        close(logits, ref)
        close(step, ref_step)
    disable_longheads(tiny)
