"""Search layer: the search tree as data (``tree``) and best-first search (``best_first``)."""

from .best_first import SearchEvent, best_first_search
from .tree import NodeStatus, SearchTree, TreeInvariantError, normalize_goal

__all__ = [
    "NodeStatus",
    "SearchEvent",
    "SearchTree",
    "TreeInvariantError",
    "best_first_search",
    "normalize_goal",
]
