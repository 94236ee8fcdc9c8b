import pytest
import torch
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

from longdoc.longheads.config import LongHeadsConfig, window_config
from longdoc.errors import ConfigError
from longdoc.longheads.rope import Rope

from tiny_models import make_tiny_llama


def test_chunk_size_must_divide_the_window():
    with pytest.raises(ConfigError, match="does not divide window"):
        window_config(300, 2048)
    assert window_config(256, 2048).chunks == 8


@pytest.mark.parametrize("bad", [dict(chunks=2), dict(chunks=3, keep_previous=True), dict(chunk_size=0), dict(score="max"), dict(exact_tail=-1)])
def test_bad_settings_name_the_fix(bad):
    with pytest.raises(ConfigError):
        LongHeadsConfig(**bad)


def test_paper_preset_is_the_papers_recipe():
    cfg = LongHeadsConfig.paper()
    assert (cfg.score, cfg.score_rope, cfg.keep_previous, cfg.prefill_selection) == ("rep", "none", False, "token")
    assert cfg.selected_per_head == cfg.chunks - 2


def test_rerotated_keys_equal_keys_rotated_at_the_new_position():
    """Rotating a key cached at position p by `shift` equals transformers rotating the raw key at p + shift."""
    model = make_tiny_llama()
    rotary = LlamaRotaryEmbedding(model.config)
    rope = Rope.from_model(model)
    raw = torch.randn(1, 2, 5, 16)
    old = torch.tensor([[3, 700, 4000, 9000, 65000]])
    shift = torch.tensor([250, -512, 1024, -8000, 66000])
    cos, sin = rotary(raw, old)
    _, k_old = apply_rotary_pos_emb(raw, raw, cos, sin)
    cos2, sin2 = rotary(raw, old + shift)
    _, k_new = apply_rotary_pos_emb(raw, raw, cos2, sin2)
    moved = rope.rotate(k_old, shift)  # shifts (5,) broadcast over the 5 positions
    # float32 cos/sin of ~1e5-radian angles in transformers' own table limit the agreement at large positions
    torch.testing.assert_close(moved, k_new, atol=5e-3, rtol=0)
    torch.testing.assert_close(moved[..., :2, :], k_new[..., :2, :], atol=1e-5, rtol=0)
