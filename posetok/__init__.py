"""posetok: human pose as discrete tokens."""

__version__ = "0.1.0"

from .checkpoint import load  # noqa: E402

__all__ = ["load", "__version__"]
