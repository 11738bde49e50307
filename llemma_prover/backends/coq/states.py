"""The search's proof states of one theorem, and the goal text they are known by.

Every state the search sees gets a persistent id (``0`` is the root). A state remembers its parent
and tactic, i.e. its path from the root; the process is moved along those paths by ``step.Stepper``.
Goal text (the de-duplication key of a state, and what a model is shown) is built from Coq's
structured goal records only (``ide.Goal``), never from printed output, in coqtop's layout (the one
``docs/FORMATS.md`` gives for training data): the first goal's hypotheses, the ``====`` rule and its
conclusion, then the other goals' conclusions; white space collapsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .ide import Goal

__all__ = ["Node", "StateTree", "goal_text", "goal_texts"]


def goal_text(goal: Goal) -> str:
    """One goal as text: hypotheses one per line, the ``====`` rule, the conclusion; blanks collapsed."""
    hyps = [" ".join(h.split()) for h in goal.hyps]
    return "\n".join([*hyps, "============================", " ".join(goal.concl.split())])


def goal_texts(goals: Sequence[Goal]) -> tuple[str, ...]:
    """The goal texts of a state, in coqtop's layout (``docs/FORMATS.md``, ``data.steps.coq_goal_text``):
    the first goal with its hypotheses, the other goals as their conclusions."""
    return tuple(goal_text(g) if i == 0 else " ".join(g.concl.split()) for i, g in enumerate(goals))


@dataclass
class Node:
    """One state: where it came from."""

    parent: int | None
    tactic: str | None  # validated sentence without final period
    depth: int


class StateTree:
    """The states of the open theorem: ``nodes[id]`` and the goal texts of every state handed out."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.goals: dict[int, tuple[str, ...]] = {}

    def reset(self) -> None:
        """Only the root (state ``0``, goals not yet known) is left."""
        self.nodes = [Node(parent=None, tactic=None, depth=0)]
        self.goals = {}

    def known(self, state_id: int) -> bool:
        """Whether ``state_id`` was handed out (as a root or a step's result) in this theorem."""
        return 0 <= state_id < len(self.nodes) and state_id in self.goals

    def add(self, parent: int, tactic: str) -> int:
        """A new state reached from ``parent`` by ``tactic``; its id."""
        self.nodes.append(Node(parent=parent, tactic=tactic, depth=self.nodes[parent].depth + 1))
        return len(self.nodes) - 1

    def tactic(self, state_id: int) -> str:
        """The tactic that reached ``state_id`` (not the root)."""
        tactic = self.nodes[state_id].tactic
        assert tactic is not None
        return tactic

    def path(self, state_id: int) -> list[int]:
        """State ids from the root to ``state_id``, both included."""
        path = []
        cur: int | None = state_id
        while cur is not None:
            path.append(cur)
            cur = self.nodes[cur].parent
        path.reverse()
        return path

    def tactics_to(self, state_id: int) -> list[str]:
        """The tactic path (validated sentences) from the root to ``state_id``."""
        return [t for t in (self.nodes[s].tactic for s in self.path(state_id)) if t is not None]
