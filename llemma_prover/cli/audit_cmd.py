"""``llemma-prover audit``: the vacuity audit of a benchmark's statements (docs/benchmarks.md).

For each statement, searches with the bank (plus the witness family) and a fixed small budget, on the
worker pool, for (a) a proof that goes through ``False`` in place of the final conclusion
(``vacuous``) and (b) ``False`` from the hypotheses alone (``inconsistent``); (c) a statement whose
probe cannot even load is re-tried as written (``ill-typed`` if it fails too). Every flag's proof is
re-checked by the independent check like any proof. Writes ``manifest.json`` (flags with their
proofs, plus the known ``disputed`` statements) and ``audit.md`` into ``--out``; ``--write-manifest``
also replaces the shipped manifest of a miniF2F split.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import (
    BACKENDS,
    BANK_SEARCH,
    DATA_SYSTEM,
    DATASET_SPLIT,
    SPLITS,
    GeneratorConfig,
    RunConfig,
)
from ..core.errors import ConfigError

if TYPE_CHECKING:
    from ..backends.base import AuditProbes

#: the audit's fixed budget per probe (the bank's own search budget, as ``prove`` uses it)
AUDIT_SEARCH = BANK_SEARCH


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "audit",
        help="flag vacuous, inconsistent and ill-typed statements of a benchmark",
        description="Per statement: is it provable with its conclusion replaced by False (vacuous), is "
        "False provable from its hypotheses (inconsistent), does it type-check. Flags and the checked "
        "proofs that justify them go into a statement manifest. Running it again resumes.",
    )
    p.add_argument("--split", default="minif2f-test", choices=sorted(SPLITS), help="benchmark split")
    p.add_argument("--dataset", default=None, metavar="FILE.jsonl",
                   help="audit the theorems of this JSON-lines file instead (docs/benchmarks.md)")
    p.add_argument("--data-dir", default=None,
                   help="miniF2F folder (default: $LLEMMA_PROVER_DATA, else shipped)")
    p.add_argument("--backend", default="coq", choices=BACKENDS, help="prover (default: coq)")
    p.add_argument("--theorems", default="", help="comma-separated theorem names (default: all)")
    p.add_argument("--limit", type=int, default=None, help="only the first N theorems")
    p.add_argument("--workers", type=int, default=None,
                   help="Ray workers (default: CPU count; 0 = in process)")
    p.add_argument("--out", default=None, help="output folder (default: runs/audit-<split>-<backend>)")
    p.add_argument("--proofs-from", action="append", default=[], metavar="RUN",
                   help="a run folder whose results.jsonl may prove flagged statements (repeatable)")
    p.add_argument("--write-manifest", action="store_true",
                   help="also replace the shipped manifest of this miniF2F split (maintainers)")
    return p


def portable_argv(argv: list[str]) -> list[str]:
    """The command line without the values of path flags (``--out``, ``--proofs-from``, ``--data-dir``,
    ``--dataset``: where things lay on the machine that ran it), for the manifest a repository ships."""
    out: list[str] = []
    skip = False
    for word in argv:
        if skip:
            out.append("...")
            skip = False
            continue
        flag, eq, _ = word.partition("=")
        if flag in _PATH_FLAGS:
            out.append(f"{flag}=..." if eq else flag)
            skip = not eq
        else:
            out.append(word)
    return out


_PATH_FLAGS = ("--out", "--proofs-from", "--data-dir", "--dataset")


def _look_up_proofs(runs: list[str], names: set[str]) -> dict[str, list[str]]:
    """name -> the run folders whose results.jsonl holds a checked proof of it."""
    found: dict[str, list[str]] = {}
    for run in runs:
        path = Path(run) / "results.jsonl"
        if not path.is_file():
            raise ConfigError(f"--proofs-from {run!r} holds no results.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("theorem") in names and rec.get("status") == "proved":
                found.setdefault(rec["theorem"], []).append(Path(run).name)
    return found


def _ill_typed(cfg: RunConfig, theorems: list[Any]) -> dict[str, str]:
    """For the theorems whose probes did not load: load the original statement; name -> message if
    it fails too (a statement that loads as written is not ill-typed, whatever its probes did)."""
    from ..backends.base import make_backend
    from ..core.errors import ProverError

    out: dict[str, str] = {}
    if not theorems:
        return out
    with make_backend(cfg.backend, cfg.prover) as backend:
        for t in theorems:
            try:
                backend.start_theorem(t)
            except ProverError as exc:
                out[t.name] = " ".join(str(exc).split())
    return out


def build_config(args: argparse.Namespace, plan: AuditProbes, data_dir: str) -> RunConfig:
    """The one, final config of the probe searches: the bank with the probes' first step and witness
    family, ``AUDIT_SEARCH`` budgets, results in ``<out>/search``."""
    from ..backends.base import prover_setup

    names = tuple(n.strip() for n in args.theorems.split(",") if n.strip())
    tag = Path(args.dataset).stem.removesuffix(".jsonl") if args.dataset else args.split
    out = Path(args.out or Path("runs") / f"audit-{tag}-{args.backend}").resolve()
    cfg = RunConfig(
        split=DATASET_SPLIT if args.dataset else args.split, backend=args.backend, data_dir=data_dir,
        out_dir=str(out / "search"), dataset=os.path.abspath(args.dataset) if args.dataset else "",
        theorems=names, limit=args.limit,
        workers=(os.cpu_count() or 1) if args.workers is None else args.workers,
        search=AUDIT_SEARCH, prover=prover_setup(args.backend).default_config(),
        generator=GeneratorConfig(name="bank", root_tactic=plan.root_tactic,
                                  extra_tactics=plan.extra_tactics),
    )
    cfg.validate()
    return cfg


def run(args: argparse.Namespace) -> int:
    from ..backends.base import proof_dialect
    from ..core.types import Reason, Status
    from ..data.audit import audit_flags, audit_markdown, probe_name, verdicts
    from ..data.manifest import build_manifest, load_manifest, merge_manifest, shipped_manifest_path
    from ..data.minif2f import DATA_ENV, load_theorems, select
    from ..results.rundir import RunDir
    from ..workers.driver import preflight, run_metadata, start_generator
    from .prove import _run_with_progress

    console = args._console
    plan = proof_dialect(args.backend).audit_probes()
    if plan is None:
        raise ConfigError(f"no audit probes for --backend {args.backend} yet (coq has them)")
    if args.write_manifest and args.dataset:
        raise ConfigError("--write-manifest replaces a shipped miniF2F manifest; not for a --dataset")
    system = DATA_SYSTEM[args.backend]
    dataset, data_dir = load_theorems(args.dataset, args.data_dir, os.environ.get(DATA_ENV), system,
                                      SPLITS[args.split])
    cfg = build_config(args, plan, data_dir)
    out = Path(cfg.out_dir).parent
    theorems = select(dataset.theorems, cfg.theorems, cfg.limit)
    proof_dialect(cfg.backend).require_footers_honoured(theorems)
    probes = [plan.make(t, p) for t in theorems for p in plan.probes]
    preflight(cfg)
    started = start_generator(cfg)
    with started as resolved:
        meta = run_metadata(cfg, resolved, dataset.files, dataset.sha256,
                            ["llemma-prover", *args._argv], note="audit probes")
        meta["command_name"] = "audit"
        run_dir = RunDir.open(Path(cfg.out_dir), meta)
        todo = [t for t in probes if not run_dir.done(t.name)]
        console.print(f"audit: {len(theorems)} statements x {len(plan.probes)} probes "
                      f"({', '.join(plan.probes)}); {len(probes) - len(todo)} already done; "
                      f"budget per probe: {cfg.search.max_expansions} expansions, "
                      f"{cfg.search.time_budget:g} s; workers: {cfg.workers or 'in-process'}",
                      highlight=False)
        _run_with_progress(cfg, resolved, todo, run_dir, console, 0, len(probes))
        records = dict(run_dir.records)
    unloaded = [t for t in theorems
                if any((r := records.get(probe_name(t.name, p))) is not None and r.status is Status.ERROR
                       and r.reason is Reason.START_FAILED for p in plan.probes)]
    found = verdicts(theorems, plan.probes, plan.root_tactic, records, _ill_typed(cfg, unloaded))
    when = _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    source = f"llemma-prover audit ({args.backend}, {when})"
    audit_info = {"command": " ".join(["llemma-prover", *portable_argv(args._argv)]), "date": when,
                  "backend": args.backend,
                  "budget": dataclasses.asdict(cfg.search), "witness_tactics": list(plan.extra_tactics),
                  "statements": len(theorems), "complete": len(theorems) == len(dataset.theorems)}
    manifest = build_manifest(system, cfg.split_name, theorems, audit_flags(found, source), audit_info)
    flagged = {e.name for e in manifest.entries if e.flags}
    text = manifest.to_json()
    (out / "manifest.json").write_text(text, encoding="utf-8")
    report = audit_markdown(manifest, found, _look_up_proofs(args.proofs_from, flagged))
    (out / "audit.md").write_text(report, encoding="utf-8")
    if args.write_manifest:
        target = shipped_manifest_path(system, SPLITS[args.split])
        merged = merge_manifest(load_manifest(target) if target.is_file() else None, manifest,
                                dataset.theorems)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(merged.to_json(), encoding="utf-8")
        console.print(f"shipped manifest updated ({len(theorems)} statements audited): {target}",
                      highlight=False)
    print(report)
    print(f"manifest: {out / 'manifest.json'}")
    return 0
