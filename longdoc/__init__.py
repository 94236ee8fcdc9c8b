"""longdoc: a local LLaMA-family model reads a whole long document in one prompt, with LongHeads attention."""

from .cache import LongHeadsCache
from .config import LongHeadsConfig, window_config
from .errors import ConfigError, InputError, LongdocError, ModelError, TooLongError
from .patch import disable_longheads, enable_longheads, longheads_config

__all__ = [
    "LongHeadsCache",
    "LongHeadsConfig",
    "window_config",
    "enable_longheads",
    "disable_longheads",
    "longheads_config",
    "LongdocError",
    "ConfigError",
    "InputError",
    "ModelError",
    "TooLongError",
]
