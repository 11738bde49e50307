"""The Coq backend (``coqidetop`` + ``coqc`` re-check), registered as ``"coq"``.

Importing this package registers the backend, so ``make_backend("coq", config)`` works.
"""

from .backend import CoqBackend

__all__ = ["CoqBackend"]
