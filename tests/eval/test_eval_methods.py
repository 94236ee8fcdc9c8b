"""Method specs and config overrides: what `--methods` and `--set` turn into."""

import pytest

from longdoc.longheads.config import LongHeadsConfig
from longdoc.errors import ConfigError
from longdoc.eval.methods import parse_methods, parse_overrides

from tiny_models import make_tiny_llama


@pytest.fixture(scope="module")
def model_config():
    return make_tiny_llama().config  # trained length 256


def test_parse_methods_with_variants():
    ms = parse_methods("full, window,longheads[score=keybound,chunks=16],paper,full")
    assert [m.label for m in ms] == ["full", "window", "longheads[score=keybound,chunks=16]", "paper"]
    assert ms[2].base == "longheads" and ms[2].overrides == {"score": "keybound", "chunks": 16}
    assert [m.selects for m in ms] == [False, False, True, True]


@pytest.mark.parametrize("spec", ["nope", "longheads[chunks=4", "full[chunks=4]", "longheads[color=red]", ""])
def test_bad_method_specs_raise_config_errors(spec):
    with pytest.raises(ConfigError):
        parse_methods(spec)


def test_overrides_are_typed():
    assert parse_overrides(["chunks=16", "keep-previous=false", "score=keybound", "exact_tail=0"]) == {
        "chunks": 16, "keep_previous": False, "score": "keybound", "exact_tail": 0}
    for bad in (["chunks=many"], ["keep_previous=maybe"], ["chunks"], ["window_size=3"]):
        with pytest.raises(ConfigError):
            parse_overrides(bad)


def test_method_configs_share_one_window(model_config):
    common = {"chunk_size": 16, "chunks": 4}
    full, window, lh, paper, kb = parse_methods("full,window,longheads,paper,longheads[score=keybound,chunks=8]")
    assert full.config(model_config, common) is None
    w, d, p, k = (m.config(model_config, common) for m in (window, lh, paper, kb))
    assert w == LongHeadsConfig(chunk_size=16, chunks=4, selection="window")
    assert d == LongHeadsConfig(chunk_size=16, chunks=4)
    assert p == LongHeadsConfig.paper(chunk_size=16, chunks=4)
    assert (k.score, k.chunks, k.chunk_size) == ("keybound", 8, 16)  # the method's own override wins


def test_paper_uses_the_models_window_size(model_config):
    (paper,) = parse_methods("paper")
    cfg = paper.config(model_config)
    default = LongHeadsConfig.for_model(model_config)
    assert (cfg.chunk_size, cfg.chunks, cfg.keep_previous, cfg.prefill_selection) == (
        default.chunk_size, default.chunks, False, "token")


def test_rope_scaling_baselines_change_positions_and_restore_them():
    import torch

    from longdoc.eval.methods import activate, parse_methods
    from tiny_models import make_tiny_llama

    model = make_tiny_llama(max_positions=64, vocab=512)
    ids = torch.randint(0, 512, (1, 128))
    with torch.no_grad():
        plain = model(ids).logits
        ntk, pi = parse_methods("ntk,pi")
        assert ntk.rope(128, model.config) == {"rope_type": "dynamic", "factor": 2.0}
        assert pi.rope(32, model.config)["factor"] == 1.0  # never compresses a prompt inside the trained length
        activate(model, None, pi.rope(128, model.config))
        interpolated = model(ids).logits
        activate(model, None, ntk.rope(128, model.config))
        dynamic = model(ids).logits
        activate(model, None)
        again = model(ids).logits
    assert not torch.allclose(interpolated, plain, atol=1e-4) and not torch.allclose(dynamic, plain, atol=1e-4)
    assert torch.equal(again, plain)
    assert ntk.config(model.config) is None and ntk.is_full
