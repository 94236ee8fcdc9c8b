"""The result file of an evaluation: one JSON document rewritten (atomically) after every measurement, so a
long run that is interrupted keeps what it measured, and running the same command again resumes it.

    {"task", "model", "machine", "config", "results": [one record per method x length (x depth)],
     "trials": [every single measurement the results were aggregated from]}

A stored trial is reused only when its key matches exactly: method label, the method's full LongHeadsConfig
(hashed), length, depth and trial index, and the seed. What an earlier run measured and this run does not touch
(other lengths, other methods, another --threads) stays in the file: a run only adds or replaces.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

from ..errors import InputError


def config_id(cfg) -> str:
    """A short stable hash of a method's config (None = full attention)."""
    blob = json.dumps(cfg.to_dict() if cfg is not None else None, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


class ResultsFile:
    def __init__(self, path: str | Path | None, *, task: str, model: str, machine: dict, config: dict,
                 resume: bool = True):
        self.path = Path(path) if path else None
        self.data = {"task": task, "model": model, "machine": machine, "config": config, "results": [], "trials": []}
        self._done: dict[str, dict] = {}
        self._old_results: list[dict] = []  # records of the earlier run(s), kept unless this run replaces them
        if self.path and resume and self.path.exists():
            try:
                old = json.loads(self.path.read_text())
            except (OSError, ValueError):
                raise InputError(f"{self.path} exists but is not a result file: remove it or pick another --json path.") from None
            if old.get("task") == task and old.get("model") == model:
                for t in old.get("trials", []):
                    self._done[_key(t)] = t
                self._old_results = old.get("results", [])
                old_methods = (old.get("config") or {}).get("methods")
                if isinstance(old_methods, dict) and isinstance(config.get("methods"), dict):
                    self.data["config"] = {**config, "methods": {**old_methods, **config["methods"]}}

    @property
    def results(self) -> list[dict]:
        return self.data["results"]

    @property
    def trials(self) -> list[dict]:
        return self.data["trials"]

    def done(self, **key) -> dict | None:
        """The stored trial with this key from an earlier run of the same command, if any."""
        found = self._done.get(_key(key))
        if found is not None and found not in self.trials:
            self.trials.append(found)
        return found

    def add_trial(self, trial: dict) -> None:
        self.trials.append(trial)
        self._done[_key(trial)] = trial

    def measure(self, key: dict, run: Callable[[], dict], aggregate: Callable[[list[dict]], list[dict]],
                on_trial: Callable[[dict], None] | None = None, timed: bool = True) -> dict:
        """The trial for `key`: reused from an earlier run, or measured by run() (its fields join the key, plus
        "seconds" if timed), stored, re-aggregated and saved at once, and passed to on_trial."""
        found = self.done(**key)
        if found is not None:
            return found
        t0 = time.perf_counter()
        trial = {**key, **run()}
        if timed:
            trial["seconds"] = round(time.perf_counter() - t0, 2)
        self.add_trial(trial)
        self.set_results(aggregate(self.trials))
        if on_trial:
            on_trial(trial)
        return trial

    def set_results(self, records: list[dict]) -> None:
        self.data["results"] = records
        self.save()

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(self._merged(), f, indent=1)
            f.write("\n")
        os.replace(tmp, self.path)  # readers never see a half-written file


    def _merged(self) -> dict:
        """This run's data plus every earlier trial and record it did not re-measure."""
        seen = {_key(t) for t in self.trials}
        trials = self.trials + [t for k, t in self._done.items() if k not in seen]
        old = {_cell(r): r for r in self._old_results if _measured(r)}
        results = [r if _measured(r) or _cell(r) not in old else old[_cell(r)] for r in self.results]
        cells = {_cell(r) for r in results}
        results += [r for c, r in old.items() if c not in cells]
        return {**self.data, "results": results, "trials": trials}


def _cell(record: dict) -> str:
    """A record's cell: method x length x depth, and x reader / task for the evaluations that have them."""
    cell = [record.get("method"), record.get("length"), record.get("depth")]
    extra = [record.get(k) for k in ("reader", "task") if record.get(k) is not None]
    return json.dumps(cell + extra)


def _measured(record: dict) -> bool:
    return bool(record.get("trials")) or record.get("ppl") is not None or record.get("prefill_s") is not None


KEY_FIELDS = ("task", "method", "reader", "config_id", "length", "depth", "trial", "seed")


def _key(d: dict) -> str:
    return json.dumps([d.get(k) for k in KEY_FIELDS])
