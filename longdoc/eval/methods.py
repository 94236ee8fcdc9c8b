"""The attention methods an evaluation compares, and config overrides to compare LongHeads variants.

    full                 LongHeads off: the unpatched model (transformers SDPA, full attention)
    ntk, pi              full attention with transformers' own RoPE scaling, the paper's "full attention"
                         baselines: dynamic NTK (rope_type="dynamic") and linear position interpolation
                         (rope_type="linear", Chen et al. 2023), factor = prompt length / trained length (>= 1)
    window               sink + recent baseline of the same window: LongHeadsConfig(selection="window")
    longheads            the default LongHeadsConfig for the model
    paper                LongHeadsConfig.paper(): the recipe exactly as published

A method may carry its own overrides in brackets, so variants run side by side in one table:
    --methods 'full,longheads,longheads[score=keybound,chunks=16]'
`--set key=value` overrides apply to every LongHeads method (window included, so its window stays equal).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..longheads.config import LongHeadsConfig
from ..errors import ConfigError

BASES = ("full", "ntk", "pi", "window", "longheads", "paper")
ROPE_TYPES = {"ntk": "dynamic", "pi": "linear"}


@dataclass(frozen=True)
class Method:
    label: str  # as written by the user; the key of the method in tables and JSON
    base: str  # one of BASES
    overrides: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_full(self) -> bool:
        """Full attention over the whole prompt (quadratic): full, ntk, pi."""
        return self.base in ("full", *ROPE_TYPES)

    def rope(self, length: int, model_config) -> dict | None:
        """The RoPE scaling this method runs a `length`-token prompt with (None: the model's own)."""
        if self.base not in ROPE_TYPES:
            return None
        from ..longheads.config import trained_length

        return {"rope_type": ROPE_TYPES[self.base], "factor": max(1.0, length / trained_length(model_config))}

    @property
    def selects(self) -> bool:
        """Does this method select chunks per head (so a hit rate means something)?"""
        return self.base in ("longheads", "paper")

    def config(self, model_config, common: dict | None = None) -> LongHeadsConfig | None:
        """The LongHeadsConfig this method runs with on a model (None: full attention)."""
        if self.is_full:
            return None
        over = {**(common or {}), **self.overrides}
        if self.base == "paper":
            sizes = LongHeadsConfig.for_model(model_config)  # the model's window size, the paper's recipe
            over = {"chunk_size": sizes.chunk_size, "chunks": sizes.chunks, **over}
            return LongHeadsConfig.paper(**over)
        cfg = LongHeadsConfig.for_model(model_config, **over)
        return cfg.replace(selection="window") if self.base == "window" else cfg


def checked_configs(methods: list["Method"], model_config, common: dict | None = None) -> dict:
    """label -> LongHeadsConfig (None for full attention), each checked against the model: a config that cannot
    run fails here, before the first long measurement, not after it."""
    configs = {m.label: m.config(model_config, common) for m in methods}
    for cfg in configs.values():
        if cfg is not None:
            cfg.check_model(model_config)
    return configs


def activate(model, cfg: LongHeadsConfig | None, rope: dict | None = None) -> None:
    """Switch one loaded model to a method's attention (prompts and weights stay the same) and RoPE scaling
    (`Method.rope`; None restores the model's own)."""
    from ..longheads.patch import disable_longheads, enable_longheads

    set_rope_scaling(model, rope)
    if cfg is None:
        disable_longheads(model)
    else:
        enable_longheads(model, cfg)


def set_rope_scaling(model, rope: dict | None) -> None:
    """Give the model a rotary embedding built by transformers from its config with `rope` merged into
    `rope_parameters` (a new submodule, as `from_pretrained` would build; no forward is patched)."""
    import copy

    inner = model.model
    original = getattr(inner, "_longdoc_original_rotary", None)
    if rope is None:
        if original is not None:
            inner.rotary_emb = original
            inner._longdoc_original_rotary = None
        return
    if original is None:
        inner._longdoc_original_rotary = original = inner.rotary_emb
    config = copy.deepcopy(model.config)
    config.rope_parameters = {**(config.rope_parameters or {}), **rope}
    inner.rotary_emb = type(original)(config).to(next(model.parameters()).device)


def parse_methods(spec: str) -> list[Method]:
    """'full,longheads[chunks=16,score=keybound]' -> [Method('full'), Method('longheads[...]', overrides)]."""
    methods, seen = [], set()
    for item in _split_top_level(spec):
        name, _, rest = item.partition("[")
        name = name.strip()
        if name not in BASES:
            raise ConfigError(f"unknown method {name!r}: use one of {', '.join(BASES)} (variants: longheads[k=v,...]).")
        overrides = {}
        if rest:
            if not rest.endswith("]"):
                raise ConfigError(f"method {item!r}: close the override list with ']'.")
            overrides = parse_overrides([p for p in rest[:-1].split(",") if p.strip()])
        if name in ("full", *ROPE_TYPES) and overrides:
            raise ConfigError(f"method {name!r} takes no overrides: it is full attention.")
        if item in seen:
            continue
        seen.add(item)
        methods.append(Method(item, name, overrides))
    if not methods:
        raise ConfigError("no methods given: use e.g. --methods full,window,longheads.")
    return methods


def parse_overrides(pairs: list[str] | tuple[str, ...]) -> dict:
    """['score=keybound', 'chunks=16', 'keep_previous=false'] -> typed dict of LongHeadsConfig fields."""
    types = {f.name: f.type for f in fields(LongHeadsConfig)}
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip().replace("-", "_"), value.strip()
        if not sep or not key:
            raise ConfigError(f"override {pair!r} is not key=value, e.g. --set chunks=16.")
        if key not in types:
            raise ConfigError(f"unknown setting {key!r}: use one of {', '.join(types)}.")
        kind = str(types[key])
        if kind in ("int", "<class 'int'>"):
            try:
                out[key] = int(value)
            except ValueError:
                raise ConfigError(f"{key} must be a whole number, got {value!r}.") from None
        elif kind in ("bool", "<class 'bool'>"):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ConfigError(f"{key} must be true or false, got {value!r}.")
            out[key] = value.lower() in ("true", "1", "yes")
        else:
            out[key] = value
    return out


def _split_top_level(spec: str) -> list[str]:
    """Split on commas that are not inside [...]."""
    items, depth, cur = [], 0, ""
    for ch in spec:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(cur.strip())
            cur = ""
        else:
            cur += ch
    items.append(cur.strip())
    return [i for i in items if i]
