"""What LongHeads relies on from transformers, checked so that a new transformers release fails here, loudly,
instead of silently changing answers: the arguments the registered attention function receives, the shapes
and post-RoPE state of query/key, no deprecation warnings from longdoc's own calls, and a forward that works
with and without autograd."""

import warnings

import pytest
import torch
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface

from longdoc import LongHeadsCache, LongHeadsConfig, enable_longheads
from longdoc.longheads.attention import ATTN_NAME, longheads_attention
from longdoc.longheads.plan import ForwardPlan, cache_kwargs

from tiny_models import make_tiny_llama

CFG = LongHeadsConfig(chunk_size=8, chunks=4, exact_tail=5)
PHI3 = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)
BASE = {"scaling", "dropout", "position_ids", "use_cache"}
# the keyword arguments each family's attention module passes to the attention function (transformers 5.x);
# longheads_plan is ours (a model(...) keyword transformers forwards)
EXPECTED = {"llama": BASE, "mistral": BASE | {"sliding_window"}, "qwen2": BASE | {"sliding_window"},
            "qwen3": BASE | {"sliding_window"}, "phi3": BASE | {"sliding_window"}}


@pytest.mark.parametrize("model_type", list(EXPECTED))
@torch.inference_mode()
def test_the_attention_function_receives_what_longheads_expects(model_type):
    model = make_tiny_llama(model_type=model_type, **(PHI3 if model_type == "phi3" else {}))
    enable_longheads(model, CFG)
    calls = []

    def recording(module, query, key, value, attention_mask, *args, **kwargs):
        calls.append((module, query, key, value, attention_mask, args, kwargs))
        return longheads_attention(module, query, key, value, attention_mask, *args, **kwargs)

    AttentionInterface.register("longheads_contract", recording)
    AttentionMaskInterface.register("longheads_contract", AttentionMaskInterface._global_mapping[ATTN_NAME])
    model.set_attn_implementation("longheads_contract")
    ids = torch.randint(0, 512, (1, 40))
    cache = LongHeadsCache()
    model(ids, **ForwardPlan(cache, exact_from=35).model_kwargs(model))
    model.set_attn_implementation(ATTN_NAME)
    assert len(calls) == model.config.num_hidden_layers
    for i, (module, q, k, v, mask, args, kwargs) in enumerate(calls):
        assert args == (), "positional arguments past the mask: the attention signature changed"
        assert set(kwargs) == EXPECTED[model_type] | {"longheads_plan"}, (
            f"transformers now passes {sorted(kwargs)} to attention functions: review longheads_attention")
        assert module.layer_idx == i and hasattr(module, "longheads")
        cfg = model.config
        assert q.shape == (1, cfg.num_attention_heads, 40, 16) and k.shape == v.shape == (1, cfg.num_key_value_heads, 40, 16)
        assert mask is None  # our mask function ran: no (n x n) mask was built
        assert kwargs["scaling"] == pytest.approx(16 ** -0.5)
        assert isinstance(kwargs["longheads_plan"], ForwardPlan)
        torch.testing.assert_close(kwargs["position_ids"], torch.arange(40)[None])
        assert k.data_ptr() != 0 and cache.layers[i].get_seq_length() == 40  # the key the cache returned


def test_longdocs_own_calls_raise_no_deprecation_warning(tiny_model_dir):
    """A whole ask (load, prefill, decode, a second question reusing the prefix) with every FutureWarning and
    DeprecationWarning turned into an error (transformers deprecates `past_key_values=` for `cache=`)."""
    from longdoc import DocumentSession, EngineSettings
    from longdoc.generate import SamplingParams
    from longdoc.qa.session import text_document

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        engine = EngineSettings(model=str(tiny_model_dir), chunk_size=16, chunks=4).build()
        session = DocumentSession(engine, text_document("The harbour town of Quillton. " * 20), store=None)
        for question in ("Where?", "And then?"):
            reply = session.reply(question, SamplingParams(max_new_tokens=4))
            text = "".join(reply)  # a Reply streams: the model runs while it is read
            assert text == reply.text and reply.usage.completion_tokens > 0


@pytest.mark.parametrize("grad", [True, False], ids=["autograd", "no_grad"])
def test_the_low_level_forward_works_with_and_without_autograd(grad):
    """The README's low-level snippet: enable_longheads, then model(input_ids) past the window, outside and
    inside torch.no_grad(); the same logits both ways, and gradients flow when autograd records."""
    model = make_tiny_llama()
    enable_longheads(model, CFG)
    ids = torch.randint(0, 512, (1, 90))
    with torch.inference_mode():
        ref = model(ids).logits
    with torch.set_grad_enabled(grad):
        out = model(ids).logits
        torch.testing.assert_close(out.detach(), ref, atol=1e-5, rtol=1e-4)
        if grad:
            out[:, -1].logsumexp(-1).sum().backward()
            g = model.model.layers[0].self_attn.q_proj.weight.grad
            assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    with torch.set_grad_enabled(grad):  # and with the LongHeads cache, decoding one more token
        cache = LongHeadsCache()
        model(ids, **cache_kwargs(model, cache))
        step = model(ids[:, :1], **cache_kwargs(model, cache)).logits
        assert torch.isfinite(step).all()
