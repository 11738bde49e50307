"""Lean 4 backend on the community REPL (github.com/leanprover-community/repl).

Importing this package registers the backend as ``"lean4"`` (``make_backend("lean4", cfg)``).
Layout: ``protocol`` (typed requests/replies), ``repl_process`` (one process: group, limits, deadline
reads), ``pool`` (warm processes per header), ``tactics`` (refused tactics), ``audit`` (the re-check),
``locate`` (finding the REPL in ``lean_project/``), ``backend`` (the ``ProverBackend``).
"""

from .backend import Lean4Backend, Lean4Settings

__all__ = ["Lean4Backend", "Lean4Settings"]
