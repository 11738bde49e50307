"""The Isabelle backend: a client for the Isabelle server protocol and whole-theory checking.

Importing this package registers the backend as ``"isabelle"`` (``make_backend("isabelle", cfg)``).
"""

from .backend import IsabelleBackend
from .session import IsabelleOptions, IsabelleSession, TheoryCheck

__all__ = ["IsabelleBackend", "IsabelleOptions", "IsabelleSession", "TheoryCheck"]
