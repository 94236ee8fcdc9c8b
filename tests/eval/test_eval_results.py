"""Aggregating trials into records, and the result file that is saved after every trial and resumed."""

import json
import math

from longdoc.longheads.config import LongHeadsConfig
from longdoc.eval.methods import parse_methods
from longdoc.eval.results import ResultsFile, config_id
from longdoc.eval.retrieval import Cell, aggregate


def _trial(method, length, i, correct, logp, hit, depth=None, **extra):
    return dict(method=method, config_id="x", length=length, depth=depth, trial=i, seed=0, tokens=length + 3,
                correct=correct, key_logprob=logp, hit_rate=hit, **extra)


def test_aggregate_counts_and_means():
    methods = parse_methods("full,window,longheads")
    cells = [Cell(100, None, [None] * 3), Cell(200, None, [None] * 3)]
    trials = [
        _trial("longheads", 100, 0, True, -1.0, 0.5), _trial("longheads", 100, 1, False, -3.0, 0.25),
        _trial("longheads", 100, 2, True, -2.0, None),
        _trial("window", 100, 0, False, -20.0, None), _trial("window", 100, 1, True, -1.0, None),
        _trial("full", 200, 0, True, -0.5, None),
    ]
    recs = aggregate(trials, methods, cells, {("full", 100, None): "too long"})
    assert [(r["method"], r["length"]) for r in recs] == [("full", 100), ("window", 100), ("longheads", 100),
                                                         ("full", 200)]
    full100, window100, lh100, full200 = recs
    assert full100["skipped"] == "too long" and full100["trials"] == 0 and full100["correct"] is None
    assert (lh100["trials"], lh100["correct"], lh100["accuracy"]) == (3, 2, round(2 / 3, 4))
    assert math.isclose(lh100["key_logprob"], -2.0)
    assert math.isclose(lh100["hit_rate"], 0.375)  # mean over the trials that have one
    assert window100["hit_rate"] is None and (window100["correct"], window100["trials"]) == (1, 2)
    assert full200["accuracy"] == 1.0 and full200["tokens"] == 203


def test_aggregate_keeps_depth_cells_apart_and_counts_distractions():
    methods = parse_methods("longheads")
    cells = [Cell(100, 0.0, [None] * 2), Cell(100, 1.0, [None] * 2)]
    trials = [_trial("longheads", 100, 0, True, -1.0, 1.0, depth=0.0, distracted=False),
              _trial("longheads", 100, 1, False, -5.0, 0.0, depth=0.0, distracted=True),
              _trial("longheads", 100, 0, True, -1.0, 1.0, depth=1.0, distracted=False)]
    a, b = aggregate(trials, methods, cells)
    assert (a["depth"], a["correct"], a["trials"], a["distracted"]) == (0.0, 1, 2, 1)
    assert (b["depth"], b["correct"], b["trials"], b["distracted"]) == (1.0, 1, 1, 0)


def test_results_file_is_rewritten_after_every_trial_and_resumed(tmp_path):
    path = tmp_path / "out.json"
    head = dict(task="passkey", model="m", machine={"cpu": "x"}, config={"seed": 0})
    rf = ResultsFile(path, **head)
    key = dict(method="longheads", config_id=config_id(LongHeadsConfig()), length=100, depth=None, trial=0, seed=0)
    assert rf.done(**key) is None
    rf.add_trial({**key, "correct": True})
    rf.set_results([{"method": "longheads", "length": 100, "trials": 1, "correct": 1}])
    saved = json.loads(path.read_text())
    assert set(saved) == {"task", "model", "machine", "config", "results", "trials"}
    assert saved["results"][0]["correct"] == 1 and saved["trials"][0]["correct"] is True

    again = ResultsFile(path, **head)
    assert again.done(**key)["correct"] is True and len(again.trials) == 1
    changed = {**key, "config_id": config_id(LongHeadsConfig(chunks=16))}
    assert again.done(**changed) is None  # another config is another measurement
    assert ResultsFile(path, **{**head, "model": "other"}).done(**key) is None
    assert ResultsFile(path, **head, resume=False).done(**key) is None


def test_resuming_with_other_lengths_or_methods_keeps_what_was_measured(tmp_path):
    """A second run over other cells (e.g. another --threads or --lengths) adds to the file, never drops."""
    path = tmp_path / "out.json"
    head = dict(task="passkey", model="m", machine={"cpu": "x"}, config={"methods": {"longheads": {"chunks": 8}}})
    first = ResultsFile(path, **head)
    k8 = dict(method="longheads", config_id="a", length=8192, depth=None, trial=0, seed=0)
    first.add_trial({**k8, "correct": True})
    first.set_results([{"method": "longheads", "length": 8192, "depth": None, "trials": 1, "correct": 1}])

    second = ResultsFile(path, **{**head, "config": {"methods": {"window": {"chunks": 8}}}})
    k16 = dict(method="window", config_id="b", length=16384, depth=None, trial=0, seed=0)
    second.add_trial({**k16, "correct": False})
    second.set_results([
        {"method": "window", "length": 16384, "depth": None, "trials": 1, "correct": 0},
        {"method": "longheads", "length": 8192, "depth": None, "trials": 0, "correct": None},  # not re-run
    ])
    saved = json.loads(path.read_text())
    cells = {(r["method"], r["length"]): r["correct"] for r in saved["results"]}
    assert cells == {("window", 16384): 0, ("longheads", 8192): 1}  # the old measurement beats a placeholder
    assert sorted((t["method"], t["length"]) for t in saved["trials"]) == [("longheads", 8192), ("window", 16384)]
    assert set(saved["config"]["methods"]) == {"longheads", "window"}

    third = ResultsFile(path, **head)
    third.add_trial({**k8, "correct": False})  # re-measured (e.g. --fresh for that cell): the new one wins
    third.set_results([{"method": "longheads", "length": 8192, "depth": None, "trials": 1, "correct": 0}])
    saved = json.loads(path.read_text())
    assert {(r["method"], r["length"]): r["correct"] for r in saved["results"]} == {("longheads", 8192): 0,
                                                                                    ("window", 16384): 0}
    assert [t["correct"] for t in saved["trials"] if t["method"] == "longheads"] == [False]
