"""``llemma-prover doctor``: conformance checks against the real provers, model engines and GPU.

Each component has its own module (``coq``, ``lean4``, ``isabelle``, ``leandojo``, ``model``, ``gpu``);
``run_doctor(DoctorOptions)`` runs the ones asked for within a time budget and returns a ``Report``
(a table of checks: expected, seen, pass/fail, what to do). Nothing heavy is imported here.
"""

from .checks import Check, Checklist, Outcome, Report, Verdict
from .runner import BACKENDS, DoctorOptions, run_doctor

__all__ = ["BACKENDS", "Check", "Checklist", "DoctorOptions", "Outcome", "Report", "Verdict", "run_doctor"]
