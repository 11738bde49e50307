"""Terminal renderings of runs and traces with ``rich``. Functions return renderables; the CLI prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..core.records import TheoremRecord
from .model import Trace, TraceEdge, error_head

_STATUS_STYLE = {"proved": "bold green", "failed": "red", "error": "bold magenta"}
_OUTCOME_STYLE = {
    "proved": "bold green",
    "advanced": "cyan",
    "duplicate": "dim",
    "error": "red",
    "timeout": "yellow",
    "rejected": "magenta",
    "prover_error": "bold magenta",
}


def records_table(records: Sequence[TheoremRecord], title: str = "", proofs: bool = False) -> Table:
    t = Table(title=title or None, show_lines=False, header_style="bold")
    t.add_column("theorem", no_wrap=True)
    t.add_column("status", no_wrap=True)
    t.add_column("reason", no_wrap=True)
    for col in ("time s", "model s", "prover s", "exp.", "nodes"):
        t.add_column(col, justify="right", no_wrap=True)
    if proofs:
        t.add_column("proof / error")
    for r in records:
        row: list[str | Text] = [
            r.theorem,
            Text(r.status.value, style=_STATUS_STYLE.get(r.status.value, "")),
            r.reason.value,
            f"{r.time.total:.1f}",
            f"{r.time.model:.1f}",
            f"{r.time.prover:.1f}",
            str(r.expansions),
            str(r.nodes),
        ]
        if proofs:
            row.append(" ".join(r.proof) if r.proof else r.error)
        t.add_row(*row)
    return t


@dataclass(frozen=True)
class TreeOptions:
    #: failed attempts shown per node before the rest are summarised (-1: all)
    max_errors: int = 3
    #: lines of goal text shown per node (0: all)
    goal_lines: int = 3
    #: only show the proof path and its immediate attempts
    proof_only: bool = False
    #: hide subtrees deeper than this (None: unbounded)
    max_depth: int | None = None


def fmt_num(v: float | None) -> str:
    return "?" if v is None else f"{v:.3f}"


def _clip(s: str, n: int) -> str:
    s = " ".join(s.split()) if "\n" not in s else s
    return s if len(s) <= n else s[: n - 1] + "…"


def _goal_text(goals: str, lines: int) -> str:
    """The last ``lines`` lines (the conclusion is at the bottom of Coq and Lean goal displays)."""
    ls = [x for x in goals.splitlines() if x.strip()]
    if lines and len(ls) > lines:
        return "\n".join([f"… ({len(ls) - lines} lines above)"] + ls[-lines:])
    return "\n".join(ls)


def _edge_label(e: TraceEdge, on_proof: bool) -> Text:
    t = Text()
    t.append("★ " if on_proof else "", style="bold green")
    t.append(e.tactic, style="bold green" if on_proof else "bold")
    t.append(f"  [{e.outcome}", style=_OUTCOME_STYLE.get(e.outcome, ""))
    t.append(f" score {fmt_num(e.score)}, {e.elapsed * 1000:.0f} ms, #{e.order}]", style="dim")
    if e.error:
        t.append("\n  " + error_head(e.error, 120), style="red")
    return t


def trace_tree(trace: Trace, options: TreeOptions | None = None) -> Tree:
    """The search tree: tree edges nested, duplicates as references, failed attempts summarised."""
    opt = options or TreeOptions()
    proof_keys = trace.proof_edge_keys()
    proof_nodes = set(trace.proof_nodes() or [])

    def node_label(nid: int, on_proof: bool) -> Text:
        n = trace.nodes[nid]
        t = Text()
        t.append(f"#{nid} ", style="bold green" if on_proof else "bold")
        t.append(n.status, style=_STATUS_STYLE.get(n.status, "yellow" if n.status == "open" else ""))
        extra = f" depth {n.depth}, priority {fmt_num(n.priority)}"
        if n.expanded_at is not None:
            extra += f", expansion {n.expanded_at}"
        t.append(extra, style="dim")
        if n.terminal:
            t.append("  no goals: proof complete", style="bold green")
        elif n.goals:
            t.append("\n" + _goal_text(n.goals, opt.goal_lines))
        return t

    root = trace.root
    tree = Tree(node_label(root, root in proof_nodes), guide_style="dim")
    stack: list[tuple[int, Tree]] = [(root, tree)]
    visited = {root}
    while stack:
        nid, branch = stack.pop()
        node = trace.nodes[nid]
        if opt.max_depth is not None and node.depth >= opt.max_depth and trace.out_edges(nid):
            branch.add(
                Text(f"… {len(trace.out_edges(nid))} attempts below depth {opt.max_depth}", style="dim")
            )
            continue
        errors = [e for e in trace.out_edges(nid) if e.is_error]
        states = [e for e in trace.out_edges(nid) if not e.is_error]
        pending: list[tuple[int, Tree]] = []
        for e in states:
            on_proof = (e.source, e.target) in proof_keys
            if opt.proof_only and not on_proof:
                continue
            if e.outcome == "duplicate" or e.target in visited:
                branch.add(Text.assemble(_edge_label(e, False), (f"  ↪ #{e.target}", "dim")))
                continue
            visited.add(e.target)
            sub = branch.add(Group(_edge_label(e, on_proof), node_label(e.target, on_proof)))
            pending.append((e.target, sub))
        if not opt.proof_only or nid in proof_nodes:
            shown = errors if opt.max_errors < 0 else errors[: opt.max_errors]
            for e in shown:
                branch.add(_edge_label(e, False))
            rest = errors[len(shown) :]
            if rest:
                kinds: dict[str, int] = {}
                for e in rest:
                    kinds[e.outcome] = kinds.get(e.outcome, 0) + 1
                desc = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
                branch.add(
                    Text(
                        f"… {len(rest)} more failed attempts ({desc}); --errors -1 shows all", style="dim red"
                    )
                )
        stack.extend(reversed(pending))
    return tree


def budget_tables(trace: Trace, top: int = 8) -> Group:
    """Where the budget went: time split, attempts by outcome, by depth, by root branch, tactics."""
    b = trace.budget(top=top)
    parts: list[Table | Text] = []
    head = Text()
    head.append(f"{trace.theorem}: ", style="bold")
    head.append(
        "proved" if trace.proved else f"not proved ({trace.reason})",
        style="bold green" if trace.proved else "red",
    )
    head.append(f"   expansions {b.expansions}, states {b.states}, attempts {b.attempts}")
    if b.time:
        head.append("   time " + ", ".join(f"{k} {v:.1f}s" for k, v in b.time.items()))
    parts.append(head)

    t = Table(title="attempts by outcome", header_style="bold")
    for c in ("outcome", "attempts", "prover s"):
        t.add_column(c, justify="left" if c == "outcome" else "right")
    for o in b.by_outcome:
        t.add_row(Text(o.outcome, style=_OUTCOME_STYLE.get(o.outcome, "")), str(o.count), f"{o.seconds:.2f}")
    parts.append(t)

    t = Table(title="by depth", header_style="bold")
    for c in ("depth", "states", "expanded", "attempts", "prover s"):
        t.add_column(c, justify="right")
    for d in b.by_depth:
        t.add_row(str(d.depth), str(d.states), str(d.expanded), str(d.attempts), f"{d.seconds:.2f}")
    parts.append(t)

    if b.by_branch:
        t = Table(title="by first tactic (subtrees of the root)", header_style="bold")
        for c in ("first tactic", "expansions", "states", "attempts", "prover s"):
            t.add_column(c, justify="left" if c == "first tactic" else "right")
        for br in b.by_branch[:top]:
            t.add_row(
                Text(
                    ("★ " if br.on_proof else "") + _clip(br.tactic, 50),
                    style="bold green" if br.on_proof else "",
                ),
                str(br.expansions),
                str(br.states),
                str(br.attempts),
                f"{br.seconds:.2f}",
            )
        parts.append(t)

    t = Table(title="most attempted tactics", header_style="bold")
    for c in ("tactic", "attempts", "succeeded"):
        t.add_column(c, justify="left" if c == "tactic" else "right")
    for tac, n, ok in b.tactics:
        t.add_row(_clip(tac, 60), str(n), str(ok))
    parts.append(t)

    if b.errors:
        t = Table(title="most frequent errors", header_style="bold")
        t.add_column("error")
        t.add_column("count", justify="right")
        for msg, n in b.errors:
            t.add_row(Text(msg, style="red"), str(n))
        parts.append(t)
    return Group(*parts)


def proof_path_table(trace: Trace) -> Table | None:
    edges = trace.proof_edges()
    if not edges:
        return None
    t = Table(title="proof path", header_style="bold green")
    for c in ("step", "tactic", "score", "ms", "goals before"):
        t.add_column(c, justify="right" if c in ("step", "score", "ms") else "left")
    for i, e in enumerate(edges, 1):
        t.add_row(
            str(i),
            e.tactic,
            fmt_num(e.score),
            f"{e.elapsed * 1000:.0f}",
            _clip(trace.nodes[e.source].goals.replace("\n", " "), 60),
        )
    return t
