"""The Coq backend (``coqidetop`` + ``coqc`` re-check), registered as ``"coq"``.

Importing this package registers the backend, so ``make_backend("coq", config)`` works.
Layout: ``ide`` (the XML protocol), ``pool`` (processes per header, warm spare, recycling, restarts),
``states`` (state ids and goal texts), ``step`` (restoring a state; one candidate), ``settings``
(timeouts, counters), ``sentences`` (the first filter), ``header``, ``automation``, ``recheck`` (the
final check), ``backend`` (the ``ProverBackend`` facade).
"""

from .backend import CoqBackend

__all__ = ["CoqBackend"]
