"""The vectorised LongHeads attention equals the plain per-token reference, on sequences many windows long.

The fast path runs on the test device (`--device`); the reference always on the CPU. These comparisons are in
float32 on every device: selection is a discrete top-k, and bf16 rounding flips near-tied chunk scores, which
changes whole windows; bf16 is tested against float32 on the same device with selection="window" (no top-k).
"""

import pytest
import torch

from longdoc.longheads.attention import Runtime, attend
from longdoc.longheads.cache import LongHeadsLayer
from longdoc.longheads.config import LongHeadsConfig
from longdoc.longheads.reference import reference_attention
from longdoc.longheads.rope import Rope

D = 16
ROPE = Rope(1.0 / (10000 ** (torch.arange(0, D, 2).double() / D)))

CONFIGS = {
    "default-block": LongHeadsConfig(chunk_size=4, chunks=4, exact_tail=3),
    "token": LongHeadsConfig(chunk_size=4, chunks=4, prefill_selection="token"),
    "paper": LongHeadsConfig.paper(chunk_size=4, chunks=4),
    "keybound": LongHeadsConfig(chunk_size=4, chunks=5, score="keybound", score_rope="none"),
    "window": LongHeadsConfig(chunk_size=4, chunks=4, selection="window"),
    "odd-chunk": LongHeadsConfig(chunk_size=5, chunks=4, exact_tail=7),
    "score-order": LongHeadsConfig(chunk_size=4, chunks=5, chunk_order="score"),
}


def run_fast(cfg, q, k, v, splits, device="cpu", dtype=torch.float32):
    """Feed the sequence through a cache layer in calls of the given sizes; returns all outputs (B, Hq, L, d)
    on the CPU in float32."""
    q, k, v = (x.to(device, dtype) for x in (q, k, v))
    rt, layer, outs, P = Runtime(cfg, ROPE), LongHeadsLayer(), [], 0
    for T in splits:
        kk, vv = layer.update(k[:, :, P : P + T], v[:, :, P : P + T])
        outs.append(attend(rt, layer, q[:, :, P : P + T], kk, vv, D**-0.5))
        P += T
    return torch.cat(outs, dim=2).float().cpu()


def run_reference(cfg, q, k, v, splits):
    outs, P = [], 0
    for T in splits:
        outs.append(reference_attention(cfg, ROPE, q[:, :, : P + T], k[:, :, : P + T], v[:, :, : P + T], T, D**-0.5))
        P += T
    return torch.cat(outs, dim=2)


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("heads", [(4, 4), (4, 2)], ids=["MHA", "GQA"])
@pytest.mark.parametrize("splits", [[53], [19, 1, 1, 32], [8, 16, 29]], ids=["one-shot", "decode-steps", "blocks"])
def test_fast_equals_reference(name, heads, splits, dev):
    torch.manual_seed(0)
    cfg = CONFIGS[name]
    Hq, Hk = heads
    L = sum(splits)  # 53 tokens = 13 chunks of 4: more than three windows of 16
    q, k, v = torch.randn(1, Hq, L, D), torch.randn(1, Hk, L, D), torch.randn(1, Hk, L, D)
    fast = run_fast(cfg, q, k, v, splits, dev.device)
    ref = run_reference(cfg, q, k, v, splits)
    # float32 on every device; CUDA's fp32 SDPA kernels sum in another order than the CPU's (1e-4 is ample)
    torch.testing.assert_close(fast, ref, atol=1e-4 if dev.is_cuda else 2e-5, rtol=1e-4)


@pytest.mark.parametrize("splits", [[53], [19, 1, 1, 32]], ids=["one-shot", "decode-steps"])
def test_low_precision_tracks_float32(splits, dev):
    """bf16 on CUDA (float32 on CPU, where this is exact) against float32 on the same device; window selection,
    so rounding cannot change which chunks are attended. bf16 tolerance: 8 mantissa bits, outputs ~ N(0, 1/l)."""
    torch.manual_seed(3)
    cfg = CONFIGS["window"]
    q, k, v = torch.randn(1, 4, 53, D), torch.randn(1, 2, 53, D), torch.randn(1, 2, 53, D)
    low = run_fast(cfg, q, k, v, splits, dev.device, dev.dtype)
    high = run_fast(cfg, q, k, v, splits, dev.device, torch.float32)
    dev.close(low, high, atol=1e-6, rtol=1e-6, bf16=(3e-2, 3e-2))


def test_batch_of_two_equals_each_alone(dev):
    torch.manual_seed(1)
    cfg = CONFIGS["default-block"]
    q, k, v = torch.randn(2, 4, 40, D), torch.randn(2, 2, 40, D), torch.randn(2, 2, 40, D)
    both = run_fast(cfg, q, k, v, [40], dev.device)
    for b in range(2):
        alone = run_fast(cfg, q[b : b + 1], k[b : b + 1], v[b : b + 1], [40], dev.device)
        torch.testing.assert_close(both[b : b + 1], alone, atol=1e-4 if dev.is_cuda else 1e-5, rtol=1e-5)


def test_outside_the_window_differs_from_full_attention(dev):
    """Guards against a fast path that silently falls back to full attention."""
    torch.manual_seed(2)
    cfg = CONFIGS["default-block"]
    q, k, v = torch.randn(1, 4, 48, D), torch.randn(1, 4, 48, D), torch.randn(1, 4, 48, D)
    fast = run_fast(cfg, q, k, v, [48], dev.device)
    full = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=D**-0.5)
    window = cfg.window
    torch.testing.assert_close(fast[:, :, :window], full[:, :, :window], atol=1e-4 if dev.is_cuda else 1e-5, rtol=1e-5)
    assert (fast[:, :, window:] - full[:, :, window:]).abs().max() > 1e-2
