"""The decode step queues its work without waiting for the device: no value read on the host, no blocking copy.

The model runs on "meta" (tests/host_sync.py): shapes without data, so a step that read a device value would
fail, and every host<->device copy is recorded. On CUDA (`--device cuda`) the same step is checked on the GPU.
"""

import pytest
import torch

from longdoc import LongHeadsCache, LongHeadsConfig, enable_longheads
from longdoc.generate import decode_one, prefill

from host_sync import HostSyncRecorder

import transformers
from packaging.version import Version

# transformers before 5.20 wraps its rotary embedding in torch.autocast(device_type=...), which torch refuses for
# the meta device these tests decode on ("unknown device type for autocast"); CI runs the oldest allowed 5.0 too
pytestmark = pytest.mark.skipif(Version(transformers.__version__) < Version("5.20"),
                                reason="this transformers autocasts its rotary embedding on the meta device")
from tiny_models import make_tiny_llama

CONFIGS = {
    "default": LongHeadsConfig(chunk_size=8, chunks=4, exact_tail=5),
    "keybound": LongHeadsConfig(chunk_size=8, chunks=5, score="keybound"),
    "paper": LongHeadsConfig.paper(chunk_size=8, chunks=4),
    "window": LongHeadsConfig(chunk_size=8, chunks=4, selection="window"),
}


def decode_events(model, cfg, device, steps=6) -> list[str]:
    """Prefill 100 tokens (12 chunks of 8, past the 32-token window), then record `steps` decode steps (one of
    them completes chunk 12, so a summary is computed inside the recorded steps)."""
    enable_longheads(model, cfg)
    model.to(device)
    cache = LongHeadsCache()
    with torch.inference_mode():
        prefill(model, cache, torch.randint(0, 512, (1, 100)).to(device))
        token = torch.zeros(1, 1, dtype=torch.long, device=device)
        with HostSyncRecorder() as rec:
            for _ in range(steps):
                decode_one(model, cache, token)
    assert cache.get_seq_length() == 106
    assert cache.layers[0].n_summarized == (13 if cfg.selection == "longheads" else 0)
    return rec.events


def test_the_recorder_sees_host_waits():
    with HostSyncRecorder() as rec:
        x = torch.ones(3, device="meta")
        (x * 2).sum()
        torch.arange(3).to("meta")  # a blocking host->device copy
        torch.arange(3).to("meta", non_blocking=True)  # not a wait
        bool(torch.ones(2).sum() > 1)  # a value read
    assert len(rec.events) == 2, rec.events


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("heads", [(4, 4), (4, 2)], ids=["MHA", "GQA"])
def test_decode_step_has_no_host_sync(name, heads):
    model = make_tiny_llama(n_heads=heads[0], n_kv_heads=heads[1], layers=2)
    assert decode_events(model, CONFIGS[name], "meta") == []


def test_cpu_decode_reads_no_value_on_the_host():
    """The same steps on real CPU tensors: no .item()/bool() anywhere in the step either."""
    assert decode_events(make_tiny_llama(), CONFIGS["default"], "cpu") == []


@pytest.mark.cuda
def test_cuda_decode_step_has_no_host_sync(dev):
    assert decode_events(dev.model(make_tiny_llama()), CONFIGS["default"], dev.device) == []
