"""The LongHeads-guided re-read: votes, the hub correction and the dense prompt, on hand-made selection records
(the slot layout of `chunks.select`), and end to end on a tiny model."""

import torch

from longdoc import LongHeadsConfig, enable_longheads
from longdoc import reread
from longdoc.generate import prefill
from longdoc.longheads.layout import Selection
from longdoc.prefix import new_cache
from tiny_models import make_tiny_llama

L = 4  # chunk size
CFG = LongHeadsConfig(chunk_size=L, chunks=5)  # keep_previous: slots [first, sel, sel, previous, current]


def _rec(pos, selected, n_heads=3):
    """One attention call's record: groups ending at `pos`, every head choosing `selected[g]` (2 chunks)."""
    g = len(pos)
    chunks = torch.zeros(1, n_heads, g, 5, dtype=torch.long)
    for i, (p, (a, b)) in enumerate(zip(pos, selected)):
        chunks[0, :, i] = torch.tensor([0, a, b, p // L - 1, p // L])
    return Selection(0, torch.tensor(pos), chunks)


def _records():
    """Document queries (chunks 5-9) always pick hub chunk 3; the question (positions >= 40) picks 3 and 6."""
    doc = _rec([23, 27, 31, 35, 39], [(3, 1), (3, 2), (3, 4), (3, 1), (3, 2)])
    question = _rec([40, 41, 42, 43], [(3, 6), (3, 6), (3, 6), (3, 6)])
    return [doc, question]


def test_votes_are_the_share_of_question_choices():
    v = reread.chunk_votes(_records(), CFG, 10, query_from=40)
    assert v[3] == 1.0 and v[6] == 1.0 and v.sum() == 2.0  # every (head, group) choice picked both


def test_prior_marks_the_hub_chunk():
    prior = reread.chunk_prior(_records(), CFG, 10, query_to=40)
    assert prior[3] > 2.0  # picked by every document query: far above chance
    assert prior[6] == 0.0  # eligible for the later groups, never picked
    assert prior[0] == 1.0 and prior[9] == 1.0  # never a candidate: neutral


def test_hub_correction_prefers_the_chunk_only_the_question_wants():
    ids = torch.arange(46)[None]  # 11 full chunks' worth before the question at 40, then a 6-token tail
    budget = L + 1 * L + 6  # room for the first chunk, one chunk, the tail
    hub = reread.plan(ids, _records(), CFG, question_start=40, budget=budget)
    raw = reread.plan(ids, _records(), CFG, question_start=40, budget=budget, hub_correction=False)
    assert hub.chunks == [6] and raw.chunks == [3]
    assert hub.ids.tolist()[0] == [0, 1, 2, 3, 24, 25, 26, 27] + list(range(40, 46))


def test_plan_keeps_text_order_budget_and_neighbours():
    ids = torch.arange(46)[None]
    p = reread.plan(ids, _records(), CFG, question_start=40, budget=L + 3 * L + 6, neighbours=True)
    assert p.chunks == sorted(p.chunks) and len(p.chunks) <= 3
    assert 7 in p.chunks  # the chunk after the best one
    assert p.ids.shape[1] <= L + 3 * L + 6
    assert p.ids[0, -6:].tolist() == list(range(40, 46))  # the question tail, untouched


def test_plan_reads_a_lead_after_chunk_0_within_the_budget():
    ids = torch.arange(46)[None]
    lead = torch.tensor([[100, 101, 102, 103, 104]])
    budget = L + 3 * L + 6
    plain = reread.plan(ids, _records(), CFG, question_start=40, budget=budget)
    led = reread.plan(ids, _records(), CFG, question_start=40, budget=budget, lead=lead)
    assert led.ids[0, :L].tolist() == list(range(L)) and led.ids[0, L:L + 5].tolist() == [100, 101, 102, 103, 104]
    assert led.ids[0, -6:].tolist() == list(range(40, 46)) and led.ids.shape[1] <= budget
    assert plain.chunks == [3, 6] and led.chunks == [6]  # room for (22 - 4 - 6 - 5) // 4 = 1 chunk: the best one
    chunk_ids = led.ids[0, L + 5:-6].tolist()  # the chosen chunks, as in the plan without the lead
    assert chunk_ids == [t for c in led.chunks for t in range(c * L, (c + 1) * L)]
    try:  # a lead that fills the room leaves no chunk
        reread.plan(ids, _records(), CFG, question_start=40, budget=L + L + 6, lead=lead)
    except ValueError as e:
        assert "no room" in str(e)
    else:
        raise AssertionError("expected ValueError")


def test_plan_refuses_a_budget_without_room():
    ids = torch.arange(46)[None]
    try:
        reread.plan(ids, _records(), CFG, question_start=40, budget=L + 6)
    except ValueError as e:
        assert "no room" in str(e)
    else:
        raise AssertionError("expected ValueError")


def test_reread_on_a_tiny_model_reads_the_chunks_the_heads_chose():
    model = make_tiny_llama(max_positions=256, vocab=512)
    cfg = LongHeadsConfig(chunk_size=16, chunks=4)
    enable_longheads(model, cfg)
    torch.manual_seed(0)
    ids = torch.randint(5, 500, (1, 200))
    selections = []
    prefill(model, new_cache(model), ids, exact_from=180, record=selections)
    p = reread.plan(ids, selections, cfg, question_start=180, budget=64)
    # first chunk + one chunk + the tail (176..200): the chosen chunks are ones the question's heads selected
    voted = reread.chunk_votes(selections, cfg, 11, query_from=180)
    assert p.chunks and all(voted[c] > 0 for c in p.chunks)
    expected = torch.cat([ids[:, :16]] + [ids[:, c * 16 : (c + 1) * 16] for c in p.chunks] + [ids[:, 176:]], dim=1)
    assert torch.equal(p.ids, expected) and p.ids.shape[1] <= 64


def test_a_stored_prior_replaces_the_one_computed_from_the_records():
    ids = torch.arange(46)[None]
    question_only = [_records()[1]]  # the document's selections are not at hand (a stored prefix)
    no_prior = reread.plan(ids, question_only, CFG, question_start=40, budget=L + L + 6)
    stored = reread.chunk_prior(_records(), CFG, 10, query_to=40)
    with_prior = reread.plan(ids, question_only, CFG, question_start=40, budget=L + L + 6, prior=stored[:8])
    assert no_prior.chunks == [3] and with_prior.chunks == [6]


def _planted_cache(at: int, L: int = 40, l: int = 4, d: int = 8, seed: int = 0):
    """One layer, one head: random small keys; chunk `at` holds keys along u, the last query is along u too.
    Everything is rotated at its absolute position, as transformers leaves it in the cache."""
    from longdoc.longheads.cache import LongHeadsCache, LongHeadsLayer
    from longdoc.longheads.rope import Rope

    rope = Rope(1e6 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d))
    g = torch.Generator().manual_seed(seed)
    raw = 0.1 * torch.randn(L, d, generator=g)
    u = torch.zeros(d)
    u[[2, 3, 6, 7]] = 3.0  # the slow frequencies: their rotation over a few positions is small
    raw[at * l : (at + 1) * l] = u
    keys = rope.rotate(raw, torch.arange(L))[None, None]  # (1, 1, L, d)
    q = rope.rotate(u[None], torch.tensor([L - 1]))[None, None]  # (1, 1, 1, d): the last query, at L - 1
    layer = LongHeadsLayer()
    layer.update(keys, keys.clone())
    layer.pending_q = q
    cache = LongHeadsCache()
    cache.layers.append(layer)
    return cache, rope


def test_attention_votes_find_the_planted_chunk_wherever_it_sits():
    cfg = LongHeadsConfig(chunk_size=4, chunks=4)
    masses = []
    for at in (2, 7):
        cache, rope = _planted_cache(at)
        votes = reread.attention_votes(cache, rope, cfg, question_start=36, head_share=1.0)  # chunks 1..8
        assert votes.shape == (9,) and votes[0] == 0
        assert int(votes.argmax()) == at and votes[at] > 0.5
        assert abs(float(votes.sum()) - 1) < 1e-6  # each head shares out one unit
        masses.append(float(votes[at]))
    assert abs(masses[0] - masses[1]) < 0.05  # the same chunk counts the same near the question or far from it
    cache, rope = _planted_cache(2)
    cache.layers[0].pending_q = cache.layers[0].pending_q[:, :, :0]
    assert reread.attention_votes(cache, rope, cfg, question_start=36) is None  # no pending queries: no scores


def test_contrast_takes_the_lead_from_a_chunk_every_question_draws():
    """Per head: chunk 0 (column 0) is a hub (neutral questions look at it as much as this one); chunk 2 is drawn
    by this question only. Plain peaked votes rank the hub first, the contrast ranks the question's chunk."""
    mass = torch.tensor([[0.6, 0.1, 0.3], [0.5, 0.2, 0.3]], dtype=torch.float64)  # (heads, C-1)
    neutral = torch.tensor([[0.6, 0.3, 0.1], [0.6, 0.3, 0.1]], dtype=torch.float64)
    assert int(reread.peaked_votes(mass, 1.0).argmax()) == 1  # chunk 1 (column 0): the hub
    c = reread.contrast(mass, neutral)
    assert c.shape == mass.shape and int(reread.peaked_votes(c, 1.0).argmax()) == 3  # chunk 3 (column 2)
    # a neutral question that looks everywhere alike changes nothing: the ranking is the question's own
    flat = torch.full_like(neutral, 1 / 3)
    assert torch.allclose(reread.contrast(mass, flat), mass * 1.5)
    # the smoothing: a chunk the neutral question never looks at gains at most 1 / (its head's mean neutral mass)
    zero = torch.tensor([[0.0, 0.5, 0.5], [0.0, 0.5, 0.5]], dtype=torch.float64)
    assert torch.allclose(reread.contrast(mass, zero)[:, 0], mass[:, 0] * 3)


def test_attention_votes_with_neutral_mass_equal_the_contrast_of_the_masses():
    cfg = LongHeadsConfig(chunk_size=4, chunks=4)
    cache, rope = _planted_cache(2)
    other, _ = _planted_cache(7)
    neutral = reread.attention_mass(other, rope, cfg, question_start=36)
    mass = reread.attention_mass(cache, rope, cfg, question_start=36)
    votes = reread.attention_votes(cache, rope, cfg, question_start=36, head_share=1.0, neutral=neutral)
    assert torch.allclose(votes, reread.peaked_votes(reread.contrast(mass, neutral), 1.0))
    import pytest

    with pytest.raises(ValueError, match="does not match"):
        reread.attention_votes(cache, rope, cfg, question_start=36, neutral=neutral[:, :-1])


def test_plan_order_score_puts_the_best_chunk_next_to_the_question():
    ids = torch.arange(46)[None]
    votes = torch.tensor([0, 0.1, 0.5, 0, 0, 0.9, 0.2, 0, 0, 0], dtype=torch.float64)
    text = reread.plan(ids, [], CFG, question_start=40, budget=L + 3 * L + 6, votes=votes)
    near = reread.plan(ids, [], CFG, question_start=40, budget=L + 3 * L + 6, votes=votes, order="score")
    assert text.chunks == [2, 5, 6] and near.chunks == [6, 2, 5]  # ascending score: 5 (0.9) last
    assert near.ids[0, L + 2 * L : L + 3 * L].tolist() == list(range(5 * L, 6 * L))  # chunk 5 right before the tail
    assert near.ids[0, -6:].tolist() == list(range(40, 46))
    import pytest

    with pytest.raises(ValueError, match="order"):
        reread.plan(ids, [], CFG, question_start=40, budget=L + 3 * L + 6, votes=votes, order="random")


def test_a_fact_cut_by_a_chunk_boundary_is_read_whole_when_one_chunk_fits():
    """Chunk size 8: the fact sits at tokens 30..34, across the boundary of chunks 3 and 4; only one chunk fits.
    Aligned, the plan reads chunk 4 (tokens 32..40) and loses 30..31; with the token scores it reads the window
    of 8 tokens where they peak, which holds the whole fact, and the chunk it cites stays the best one."""
    cfg = LongHeadsConfig(chunk_size=8, chunks=4)
    ids = torch.arange(90)[None]  # 10 whole chunks before the question at 80
    votes = torch.zeros(10, dtype=torch.float64)
    votes[4], votes[3] = 0.6, 0.4
    tokens = torch.full((80,), 0.001)
    tokens[30:35] = torch.tensor([0.2, 0.2, 0.2, 0.2, 0.2])
    budget = 8 + 8 + 10  # chunk 0, one chunk, the tail (80..90)
    aligned = reread.plan(ids, [], cfg, question_start=80, budget=budget, votes=votes)
    peak = reread.plan(ids, [], cfg, question_start=80, budget=budget, votes=votes, token_scores=tokens)
    assert aligned.chunks == peak.chunks == [4]
    assert aligned.spans == [(32, 40)] and not set(range(30, 35)) <= set(aligned.ids[0].tolist())
    a, b = peak.spans[0]
    assert b - a == 8 and a <= 30 and 35 <= b and 28 <= a  # moved at most half a chunk
    assert set(range(30, 35)) <= set(peak.ids[0].tolist()) and peak.ids.shape[1] == aligned.ids.shape[1]
    assert peak.ids[0, :8].tolist() == list(range(8)) and peak.ids[0, -10:].tolist() == list(range(80, 90))


def test_place_spans_stays_put_on_flat_scores_and_never_enters_read_or_chosen_chunks():
    l, n_full = 8, 10
    flat = torch.ones(n_full * l)
    assert reread.place_spans([2, 5], flat, l, n_full) == [(16, 24), (40, 48)]  # ties: the chunk itself
    # the scores pull chunk 1 towards chunk 0 (read anyway) and chunk 9 towards the tail: neither may move
    edge = torch.zeros(n_full * l)
    edge[0:8], edge[79] = 1.0, 1.0
    assert reread.place_spans([1, 9], edge, l, n_full) == [(8, 16), (72, 80)]
    # chunks 4 and 6 both pulled into chunk 5 (chosen by neither) meet there without overlapping
    mid = torch.zeros(n_full * l)
    mid[40:48] = 1.0
    (a4, b4), (a6, b6) = reread.place_spans([4, 6], mid, l, n_full)
    assert b4 <= a6 and a4 >= 28 and b6 <= 60 and (b4 > 40 or a6 < 48)
    # a chosen neighbour is not entered: chunk 4 next to a chosen chunk 5 stays inside 4 .. 3.5
    assert reread.place_spans([4, 5], mid, l, n_full)[0][1] <= 40


def test_attention_scores_tokens_sum_to_the_chunk_scores():
    cfg = LongHeadsConfig(chunk_size=4, chunks=4)
    cache, rope = _planted_cache(2)
    other, _ = _planted_cache(7)
    neutral = reread.attention_mass(other, rope, cfg, question_start=36)
    for n in (None, neutral):
        s = reread.attention_scores(cache, rope, cfg, question_start=36, head_share=1.0, neutral=n)
        assert s.tokens.shape == (9 * 4,) and s.tokens[:4].abs().sum() == 0
        assert torch.allclose(s.tokens.double().reshape(9, 4).sum(dim=1), s.chunks, atol=1e-5)
        assert torch.equal(s.chunks, reread.attention_votes(cache, rope, cfg, question_start=36, head_share=1.0,
                                                            neutral=n))
        assert int(s.tokens.argmax()) // 4 == 2  # the planted chunk's keys draw the mass
