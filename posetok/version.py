"""The version of posetok (a module of its own so that low layers can name it without importing the package)."""

__version__ = "0.1.0"
