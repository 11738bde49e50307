"""``trace html``: one self-contained static HTML file for a run.

The page (``viewer.html`` + ``viewer.css`` + ``viewer.js`` from this package, inlined) needs no server
and no network: the run's records and traces are embedded as one JSON document. Repeated strings
(tactics, error messages, goals) are stored once in a string table, and error messages are clipped to
``max_error_chars``, so a full miniF2F run stays a few MB.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..core.records import TheoremRecord
from .model import Trace
from .run import RunView

#: above this many bytes of JSON the data are embedded gzipped (base64); the page unpacks them itself
COMPRESS_ABOVE = 2_000_000


@dataclass(frozen=True)
class HtmlOptions:
    max_error_chars: int = 2000
    max_goal_chars: int = 20000
    title: str = ""
    #: "auto" (gzip when the JSON exceeds COMPRESS_ABOVE bytes), "always" or "never"
    compress: str = "auto"


class _Strings:
    def __init__(self) -> None:
        self.table: list[str] = []
        self.index: dict[str, int] = {}

    def __call__(self, s: str) -> int:
        i = self.index.get(s)
        if i is None:
            i = len(self.table)
            self.table.append(s)
            self.index[s] = i
        return i


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[:n] + f"\n… [{len(s) - n} more characters]"


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _trace_payload(trace: Trace, strings: _Strings, opt: HtmlOptions) -> dict[str, Any]:
    # error leaves are not sent as nodes: the page rebuilds them from their edges
    nodes = [
        [
            n.id,
            strings(_clip(n.goals, opt.max_goal_chars)),
            n.status,
            n.depth,
            _r(n.priority),
            n.expanded_at,
            1 if n.terminal else 0,
        ]
        for n in sorted(trace.nodes.values(), key=lambda n: n.id)
        if not n.is_error
    ]
    edges = [
        [
            e.source,
            e.target,
            strings(e.tactic),
            _r(e.score),
            e.outcome,
            round(e.elapsed, 4),
            e.order,
            strings(_clip(e.error, opt.max_error_chars)) if e.error else -1,
        ]
        for e in trace.edges
    ]
    g = trace.graph
    return {
        "nodes": nodes,
        "edges": edges,
        "proof_nodes": trace.proof_nodes() or [],
        "reason": trace.reason,
        "expansions": g.get("expansions"),
        "partial": g.get("partial", ""),
    }


def _record_payload(r: TheoremRecord, trace_index: int | None) -> dict[str, Any]:
    return {
        "name": r.theorem,
        "family": r.family,
        "split": r.split,
        "status": r.status.value,
        "reason": r.reason.value,
        "expansions": r.expansions,
        "nodes": r.nodes,
        "time": round(r.time.total, 3),
        "model": round(r.time.model, 3),
        "prover": round(r.time.prover, 3),
        "check": (r.check.ok if r.check is not None else None),
        "proof": list(r.proof) if r.proof else None,
        "error": r.error,
        "trace": trace_index,
    }


def build_payload(run: RunView, opt: HtmlOptions | None = None) -> dict[str, Any]:
    opt = opt or HtmlOptions()
    strings = _Strings()
    traces: list[dict[str, Any]] = []
    theorems = []
    for r in sorted(run.records, key=lambda r: r.theorem):
        tr = run.trace(r)
        idx = None
        if tr is not None:
            idx = len(traces)
            traces.append(_trace_payload(tr, strings, opt))
        theorems.append(_record_payload(r, idx))
    gen = run.config.get("generator")
    return {
        "run": {
            "name": run.name,
            "path": str(run.path),
            "split": run.split,
            "backend": run.backend,
            "generator": gen.get("name", "") if isinstance(gen, dict) else str(gen or ""),
            "imported_from": run.config.get("imported_from", ""),
            "search": run.config.get("search", {}),
        },
        "theorems": theorems,
        "traces": traces,
        "strings": strings.table,
    }


def _asset(name: str) -> str:
    return resources.files("llemma_prover.traces").joinpath("assets", name).read_text(encoding="utf-8")


def render_html(run: RunView, opt: HtmlOptions | None = None) -> str:
    """The whole page as one string."""
    opt = opt or HtmlOptions()
    payload = build_payload(run, opt)
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    if opt.compress == "always" or (opt.compress == "auto" and len(text) > COMPRESS_ABOVE):
        packed = base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)).decode(
            "ascii"
        )
        data = f'<script id="run-data-gz" type="application/octet-stream">{packed}</script>'
    else:
        # JSON inside <script>: escape "<" so that no "</script>" or "<!--" can end the element early
        data = '<script id="run-data" type="application/json">' + text.replace("<", "\\u003c") + "</script>"
    title = opt.title or f"llemma-prover run {run.name}"
    page = _asset("viewer.html")
    return (
        page.replace("%%TITLE%%", html.escape(title))
        .replace("/*%%CSS%%*/", _asset("viewer.css"))
        .replace("/*%%JS%%*/", _asset("viewer.js"))
        .replace("%%DATA%%", data)
    )


def write_html(run: RunView, out: str | os.PathLike[str], opt: HtmlOptions | None = None) -> Path:
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(run, opt), encoding="utf-8")
    return p
