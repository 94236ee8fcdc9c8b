"""Retrieval-head scores: counted from selection records, calibrated on a tiny model, stored and reused."""

import json

import torch

from longdoc import LongHeadsConfig, enable_longheads
from longdoc import retrieval_heads as rh
from longdoc.longheads.layout import Selection
from longdoc.models import load_model

CFG = LongHeadsConfig(chunk_size=4, chunks=5)  # slots [first, sel, sel, previous, current]


def test_head_rates_count_the_choices_that_include_a_target_chunk():
    chunks = torch.zeros(1, 2, 3, 5, dtype=torch.long)
    chunks[0, 0, :, 1:3] = torch.tensor([6, 2])  # head 0: always the target 6
    chunks[0, 1, :, 1:3] = torch.tensor([1, 2])  # head 1: never
    chunks[0, 1, 2, 1] = 6  # ... except at the last position
    rec = Selection(1, torch.tensor([39, 40, 41]), chunks)
    hits, total = rh.head_rates([rec], CFG, query_from=40, targets={6}, n_layers=2, n_heads=2)
    assert total[1].tolist() == [2, 2] and total[0].tolist() == [0, 0]  # position 39 is before the question
    assert hits[1].tolist() == [2, 1]


def test_calibration_on_a_tiny_model_is_stored_and_reused(tiny_model_dir):
    lm = load_model(str(tiny_model_dir))
    cfg = LongHeadsConfig(chunk_size=16, chunks=4)
    enable_longheads(lm.model, cfg)
    scores = rh.load_or_calibrate(lm.model, lm.tokenizer, lm.name, cfg, samples=2, length=240)
    n_layers, n_heads = lm.model.config.num_hidden_layers, lm.model.config.num_attention_heads
    assert scores.shape == (n_layers, n_heads) and float(scores.min()) >= 0 and float(scores.max()) <= 1
    path = rh._store_path(lm.name, cfg)
    stored = json.loads(path.read_text())
    assert stored["config"]["chunk_size"] == 16 and len(stored["scores"]) == n_layers
    path.write_text(json.dumps({**stored, "scores": [[0.5] * n_heads] * n_layers}))
    assert torch.allclose(rh.load_or_calibrate(lm.model, lm.tokenizer, lm.name, cfg), torch.full((n_layers, n_heads), 0.5))
    path.write_text("{not json")  # a damaged file is calibrated again, not an error
    again = rh.load_or_calibrate(lm.model, lm.tokenizer, lm.name, cfg, samples=2, length=240)
    assert torch.allclose(again, scores, atol=1e-4)


def test_calibration_refuses_a_length_inside_the_window(tiny_model_dir):
    lm = load_model(str(tiny_model_dir))
    cfg = LongHeadsConfig(chunk_size=16, chunks=4)
    enable_longheads(lm.model, cfg)
    try:
        rh.calibrate(lm.model, lm.tokenizer, cfg, samples=1, length=64)
    except ValueError as e:
        assert "exceed the window" in str(e)
    else:
        raise AssertionError("expected ValueError")
