"""The attention kernels equal plain attention on expanded key/value heads."""

import pytest
import torch

from longdoc.longheads.backends import causal_attention, expand_kv, lower_right_causal_attention


def plain(q, k, v, scale):
    """Reference: expand shared kv heads, explicit bottom-right causal softmax."""
    k, v = expand_kv(k, q.shape[1]), expand_kv(v, q.shape[1])
    T, S = q.shape[-2], k.shape[-2]
    scores = (q @ k.transpose(-1, -2)) * scale
    visible = torch.arange(S)[None, :] <= torch.arange(T)[:, None] + (S - T)
    return scores.masked_fill(~visible, float("-inf")).softmax(-1) @ v


@pytest.mark.parametrize("T,S", [(12, 12), (1, 40), (5, 40)], ids=["prefill", "decode", "chunked"])
@pytest.mark.parametrize("hk", [4, 2, 1], ids=["MHA", "GQA", "MQA"])
def test_causal_attention_equals_plain(T, S, hk):
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 4, T, 16), torch.randn(1, hk, S, 16), torch.randn(1, hk, S, 16)
    torch.testing.assert_close(causal_attention(q, k, v, 0.25), plain(q, k, v, 0.25), atol=1e-5, rtol=1e-5)


def test_lower_right_causal_equals_plain():
    torch.manual_seed(1)
    q, k, v = torch.randn(2, 6, 8, 16), torch.randn(2, 6, 32, 16), torch.randn(2, 6, 32, 16)
    torch.testing.assert_close(lower_right_causal_attention(q, k, v, 0.25), plain(q, k, v, 0.25), atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="flash-attn path needs CUDA")
def test_flash_matches_sdpa_within_bf16_tolerance():
    q, k, v = (torch.randn(1, h, 64, 64, device="cuda", dtype=torch.bfloat16) for h in (8, 2, 2))
    torch.testing.assert_close(causal_attention(q, k, v, 0.125).float(), plain(q.float(), k.float(), v.float(), 0.125),
                               atol=2e-2, rtol=2e-2)
