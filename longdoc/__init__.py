"""longdoc: a local LLaMA-family model reads a whole long document in one prompt, with LongHeads attention.

Attributes are imported lazily so that `import longdoc` (and the LangChain / LlamaIndex classes) stays cheap
until a model is actually used.
"""

from importlib import import_module

from .errors import ConfigError, EngineBusyError, InputError, LongdocError, ModelError, TooLongError

_LAZY = {
    "LongHeadsCache": ".longheads.cache",
    "LongHeadsConfig": ".longheads.config",
    "window_config": ".longheads.config",
    "enable_longheads": ".longheads.patch",
    "disable_longheads": ".longheads.patch",
    "longheads_config": ".longheads.patch",
    "Engine": ".engine",
    "EngineSettings": ".settings",
    "DocumentSession": ".qa.session",
}

__all__ = [*_LAZY, "LongdocError", "ConfigError", "EngineBusyError", "InputError", "ModelError", "TooLongError"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'longdoc' has no attribute {name!r}")
