#!/usr/bin/env python3
"""Build a ``--dataset`` file from PutnamBench's Coq track (docs/datasets.md, "PutnamBench (Coq)").

Usage::

    git clone https://github.com/trishullab/PutnamBench ../putnambench
    .venv/bin/python scripts/build_putnambench.py --source ../putnambench --out putnambench.jsonl.gz
    .venv/bin/python scripts/build_putnambench.py --source ../putnambench --out putnambench.jsonl.gz \\
        --census census.json --jobs 2          # also compile every statement with coqc

One record per ``coq/src/*.v``, in file-name order (the output is deterministic: same checkout, same
bytes; ``.gz`` is written without name or mtime):

* ``statement``: the ``Theorem <file stem>`` sentence, up to its terminating period. Sentences are
  found by Coq's lexical rule (a ``.`` followed by a blank, outside comments and strings, with
  comments and strings read as Coq's lexer reads them: ``backends/coq/sentences.py``), never by a
  regular expression over the statement's layout;
* ``header``: everything before that sentence (imports, definitions, a docstring comment, an opened
  ``Section``);
* ``footer``: ``End S.`` when the header opens ``Section S`` (the file must close it after the proof);
* after the statement the file must hold only ``Proof.`` and ``Admitted.`` (and that ``End``): a
  file with anything else there, or without exactly one such theorem, is **not split**: it is
  reported on stderr with the reason (and the exit status is 1), never dropped silently;
* ``informal_statement``: from ``informal/putnam.json`` (``problem_name``), with the problem's
  ``informal_solution`` appended when it has one (as miniF2F's informal statements carry the answer);
* ``source``: ``trishullab/PutnamBench/coq/src/<file>@<commit>`` (``--commit``, default the
  checkout's ``git rev-parse HEAD``); ``split``: ``putnambench``.

``--census FILE`` compiles ``header + statement + Proof. Admitted. + footer`` of every record with
plain ``coqc`` (nice'd, ``--jobs`` at a time, with the caller's ``COQPATH``/``OCAMLPATH``, so that
libraries unpacked into a private folder are found) and writes a JSON summary: which statements
type-check and, for the others, the cause (missing library and which, or the error's first line).

PutnamBench's maintainers ask that proofs of its problems not be published: this script reads
statements only, and nothing it writes contains a proof.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from llemma_prover.backends.coq.sentences import (  # noqa: E402
    COQ_BLANKS,
    InvalidTactic,
    coq_regions,
    split_sentence_ends,
)

SPLIT = "putnambench"
REPOSITORY = "trishullab/PutnamBench"
_THEOREM_KEYWORDS = ("Theorem", "Lemma", "Proposition", "Corollary", "Fact", "Remark", "Example")
_IDENT = re.compile(r"[A-Za-z_][\w']*")


@dataclass(frozen=True)
class Sentence:
    start: int  # first character of the sentence's code (after blanks and comments)
    end: int  # one past its terminating period
    code: str  # the code, comments and strings removed, blanks collapsed, without the period


@dataclass(frozen=True)
class Split:
    header: str
    statement: str
    footer: str
    #: the theorem's name in the file when it differs from the file's (the statement is renamed)
    upstream_name: str = ""


class NotSplit(Exception):
    """A file that does not have the shape header / one theorem / Proof. Admitted. [End S.]."""


def sentences(text: str) -> list[Sentence]:
    """The sentences of ``text`` by Coq's lexical rule; ``NotSplit`` for text after the last one
    (other than blanks and comments) or an unterminated comment or string."""
    try:
        regions = coq_regions(text)
        ends = split_sentence_ends(text)
    except InvalidTactic as exc:
        raise NotSplit(f"Coq lexer: {exc}") from None
    out: list[Sentence] = []
    pos = 0
    for dot in ends:
        code_parts: list[str] = []
        first: int | None = None
        for kind, start, end in regions:
            lo, hi = max(start, pos), min(end, dot)
            if lo >= hi:
                continue
            if kind == "string":
                code_parts.append('""')
            elif kind == "code":
                code_parts.append(text[lo:hi])
            else:
                code_parts.append(" ")
            if kind != "comment":
                chunk = text[lo:hi]
                stripped = len(chunk) - len(chunk.lstrip(COQ_BLANKS))
                if first is None and stripped < len(chunk):
                    first = lo + stripped
        if first is None:  # a lone period: Coq reads it as an empty sentence, a syntax error
            raise NotSplit(f"empty sentence at character {dot}")
        out.append(Sentence(start=first, end=dot + 1, code=" ".join("".join(code_parts).split())))
        pos = dot + 1
    tail = "".join(text[max(s, pos):e] for kind, s, e in regions if kind != "comment" and e > pos)
    if tail.strip(COQ_BLANKS):
        raise NotSplit("text after the last sentence")
    return out


def split_file(text: str, name: str) -> Split:
    """Header, statement and footer of the PutnamBench file ``<name>.v``.

    Its one theorem should be called ``name``; a file whose one theorem has another name (an upstream
    slip, e.g. ``putnam_1968_a1.v`` states ``putnam_1968_b1``) keeps the record's name ``name``: the
    identifier after the keyword is replaced (the one token, nothing else) and ``upstream_name``
    says so. Several theorems, or none, is ``NotSplit``."""
    sents = sentences(text)
    hits = [i for i, s in enumerate(sents) if _theorem_name(s.code) == name]
    if not hits:
        hits = [i for i, s in enumerate(sents) if _theorem_name(s.code) is not None]
    if len(hits) != 1:
        found = [_theorem_name(sents[i].code) for i in hits]
        raise NotSplit(f"{len(hits)} theorems {found!r} (expected one, named {name!r})")
    k = hits[0]
    sections = _open_sections(sents[:k])
    rest = [s.code for s in sents[k + 1:]]
    expected = ["Proof", "Admitted"] + [f"End {s}" for s in reversed(sections)]
    if rest != expected:
        raise NotSplit(f"after the theorem: {rest!r}, expected {expected!r}")
    stmt = sents[k]
    statement = text[stmt.start:stmt.end]
    upstream = _theorem_name(stmt.code) or ""
    if upstream != name:
        m = re.match(r"(\w+[ \t\r\n]+)" + re.escape(upstream) + r"(?![\w'])", statement)
        if m is None:  # the name is not the token after the keyword in the raw text (a comment between)
            raise NotSplit(f"theorem {upstream!r} (not {name!r}) and its name cannot be replaced")
        statement = m.group(1) + name + statement[m.end():]
    else:
        upstream = ""
    return Split(
        header=text[:stmt.start].rstrip(COQ_BLANKS) + "\n",
        statement=statement,
        footer="\n".join(f"End {s}." for s in reversed(sections)),
        upstream_name=upstream,
    )


def _theorem_name(code: str) -> str | None:
    words = code.split(None, 2)
    if len(words) >= 2 and words[0] in _THEOREM_KEYWORDS:
        m = _IDENT.match(words[1])
        return m.group(0) if m else None
    return None


def _open_sections(header: list[Sentence]) -> list[str]:
    """Sections the header leaves open, outermost first; ``NotSplit`` for a mismatched ``End``."""
    stack: list[str] = []
    for s in header:
        words = s.code.split()
        if len(words) == 2 and words[0] == "Section":
            stack.append(words[1])
        elif len(words) == 2 and words[0] == "End":
            if not stack or stack[-1] != words[1]:
                raise NotSplit(f"'End {words[1]}' closes no open section")
            stack.pop()
        elif words and words[0] in ("Module", "Proof", "Qed", "Defined", "Admitted"):
            raise NotSplit(f"header holds {words[0]!r} (a module or a proof): not a plain header")
    return stack


def informal_texts(source: Path) -> dict[str, str]:
    """``problem_name`` -> informal statement (+ its solution sentence) from ``informal/putnam.json``."""
    path = source / "informal" / "putnam.json"
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for item in json.loads(path.read_text(encoding="utf-8")):
        text = (item.get("informal_statement") or "").strip()
        solution = (item.get("informal_solution") or "").strip()
        if solution and solution != "None.":
            text = f"{text} {solution}"
        out[item["problem_name"]] = text
    return out


def source_commit(source: Path) -> str | None:
    """The commit of the checkout ``source``; ``None`` unless ``source`` is the top of a git work tree
    (a folder inside another repository, e.g. a fixture, has no PutnamBench commit)."""
    proc = subprocess.run(["git", "-C", str(source), "rev-parse", "--show-toplevel", "HEAD"],
                          capture_output=True, text=True)
    lines = proc.stdout.split()
    if proc.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != source.resolve():
        return None
    return lines[1]


def build(source: Path, commit: str) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Records (file-name order) and the files not split, with why. A record whose theorem was
    renamed carries ``upstream_name`` (an extra field; the loader ignores it)."""
    files = sorted((source / "coq" / "src").glob("*.v"))
    informal = informal_texts(source)
    records: list[dict[str, str]] = []
    rejected: dict[str, str] = {}
    for path in files:
        name = path.stem
        try:
            parts = split_file(path.read_text(encoding="utf-8"), name)
        except (NotSplit, UnicodeDecodeError) as exc:
            rejected[path.name] = str(exc)
            continue
        rec = {"name": name, "split": SPLIT, "header": parts.header, "statement": parts.statement}
        if parts.footer:
            rec["footer"] = parts.footer
        if parts.upstream_name:
            rec["upstream_name"] = parts.upstream_name
        if name in informal:
            rec["informal_statement"] = informal[name]
        rec["source"] = f"{REPOSITORY}/coq/src/{path.name}@{commit}"
        records.append(rec)
    return records, rejected


def encode(records: list[dict[str, str]], gz: bool) -> bytes:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    if not gz:
        return data
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(data)
    return buf.getvalue()


# -- census ---------------------------------------------------------------------------------------
_MISSING = re.compile(
    r"Cannot find a physical path bound to logical path ([\w.']+)(?: with prefix ([\w.']+))?")


def compile_record(rec: dict[str, str], workdir: Path, timeout: float) -> dict[str, str]:
    tag = rec["name"]
    path = workdir / f"{tag}.v"
    footer = rec.get("footer", "")
    path.write_text(rec["header"] + "\n" + rec["statement"] + "\nProof.\nAdmitted.\n"
                    + (footer + "\n" if footer else ""), encoding="utf-8")
    started = time.monotonic()
    try:
        proc = subprocess.run(["nice", "-n", "10", "coqc", "-q", "-w", "-all", path.name], cwd=workdir,
                              capture_output=True, text=True, timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired:
        return {"name": tag, "status": "timeout", "message": f"timeout after {timeout:.0f} s"}
    finally:
        for suffix in (".v", ".vo", ".vok", ".vos", ".glob"):
            (workdir / f"{tag}{suffix}").unlink(missing_ok=True)
        (workdir / f".{tag}.aux").unlink(missing_ok=True)
    seconds = f"{time.monotonic() - started:.1f}"
    if proc.returncode == 0:
        return {"name": tag, "status": "ok", "seconds": seconds}
    err = " ".join(ln.strip() for ln in (proc.stderr or proc.stdout).splitlines()
                   if ln.strip() and not ln.startswith("File "))
    missing = _MISSING.search(err)
    if missing:
        # Coq ends the message with a period, which the name pattern takes in
        prefix, path = (missing.group(2) or "").rstrip("."), missing.group(1).rstrip(".")
        library = f"{prefix}.{path}" if prefix else path
        return {"name": tag, "status": "missing-library", "library": library, "message": err[:300]}
    return {"name": tag, "status": "error", "message": err[:300], "seconds": seconds}


def census(records: list[dict[str, str]], jobs: int, timeout: float) -> list[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="putnam-census-") as tmp, ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(lambda r: compile_record(r, Path(tmp), timeout), records))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True, type=Path, help="a checkout of trishullab/PutnamBench")
    ap.add_argument("--out", required=True, type=Path, help="FILE.jsonl or FILE.jsonl.gz")
    ap.add_argument("--commit", help="the checkout's commit (default: git rev-parse HEAD in --source)")
    ap.add_argument("--census", type=Path, help="also compile every statement; write a JSON summary here")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args(argv)
    if not (args.source / "coq" / "src").is_dir():
        print(f"build_putnambench: no coq/src folder in {args.source}", file=sys.stderr)
        return 2
    commit = args.commit or source_commit(args.source)
    if not commit:
        print(f"build_putnambench: {args.source} is not the top of a git checkout; give --commit",
              file=sys.stderr)
        return 2
    records, rejected = build(args.source, commit)
    args.out.write_bytes(encode(records, args.out.name.endswith(".gz")))
    total = len(records) + len(rejected)
    print(f"{len(records)}/{total} files split into records: {args.out}")
    for rec in records:
        if "upstream_name" in rec:
            print(f"renamed: {rec['name']}: the file's theorem is called {rec['upstream_name']}",
                  file=sys.stderr)
    for fname, why in sorted(rejected.items()):
        print(f"not split: {fname}: {why}", file=sys.stderr)
    if args.census:
        results = census(records, args.jobs, args.timeout)
        summary = {"source_commit": commit, "coqc": _coqc_version(), "records": len(records),
                   "ok": sum(r["status"] == "ok" for r in results),
                   "COQPATH": os.environ.get("COQPATH", ""), "results": results}
        args.census.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        print(f"census: {summary['ok']}/{len(records)} statements type-check: {args.census}")
    return 1 if rejected else 0


def _coqc_version() -> str:
    proc = subprocess.run(["coqc", "--version"], capture_output=True, text=True)
    return proc.stdout.splitlines()[0] if proc.returncode == 0 and proc.stdout else ""


if __name__ == "__main__":
    sys.exit(main())
