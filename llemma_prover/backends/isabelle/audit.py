"""The Isabelle re-check (``IsabelleBackend.check``): the proof theory plus two audit theories that
contain only our own text, checked in one ``use_theories``; the verdict is the *status of each node* as
the server reports it (structured: ``status.ok`` and the node's error messages), never text the proof
can print.

Why not regex alone: ``theory.validate_proof`` stays as the first filter, but what is a command, and
what a proof depends on, is decided by Isabelle:

* ``NAME.thy`` -- header, ``declare [[quick_and_dirty = false]]``, statement, proof, ``end``;
* ``Llemma_Parse_<nonce>.thy`` -- imports exactly the header's imports (so it has the same outer-syntax
  keywords as the proof, and nothing the proof could have defined) and runs our ML: it reads the proof
  text from ``NAME.proof`` as data and splits it with Isabelle's own lexer and command parser
  (``Token.explode`` with the context's keywords, ``Outer_Syntax.parse_spans``). It fails unless every
  span is one of ``PROOF_COMMANDS`` (``sorry``, ``oops``, ``ML``, ``ML_file``, ``declare``,
  ``axiomatization``, ``consts``, ``lemma``, ``end``, ``setup``, ... are not) and no token names a method
  that runs ML (``ML_METHODS``), and a span without a command (text that would extend the statement,
  e.g. a leading ``and h: "False"``) is malformed. This theory never imports the proof theory, so no ML
  the proof might smuggle in can shadow the functions it calls.
* ``Llemma_Oracles_<nonce>.thy`` -- imports the proof theory, restates the data's statement as
  ``llemma_restated`` proved only by ``rule NAME.NAME`` from its assumptions (the theorem Isabelle
  stored proves *this* statement: extra premises or a re-declared theorem fail), and runs our ML:
  ``Thm.peek_status`` of both
  theorems must report no oracle (``sorry``/``skip_proof``, ``cheat_tac``, any ``oracle``) and no
  unfinished or failed proof.

The check counts only if the task finished and all three nodes are ``ok`` without an error. Axioms
are excluded by the parse (no theory-level command can appear in a proof), not by an inventory of the
theory's axioms. None of the ML or Isar here has run on a real Isabelle (``docs/autoformalize.md``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from ...core.types import Theorem
from .session import TheoriesCheck
from .theory import PROOF_COMMANDS, theory_name

__all__ = [
    "ML_METHODS",
    "PROOF_COMMANDS",
    "AuditPlan",
    "audit_plan",
    "audit_verdict",
    "statement_name",
]

#: proof methods whose argument is ML source (they would run arbitrary code inside the proof)
ML_METHODS: tuple[str, ...] = ("tactic", "raw_tactic", "ml_tactic", "ML_tactic")

_IMPORTS_RE = re.compile(r"\bimports\b(?P<imports>.*?)\bbegin\b", re.DOTALL)
_THM_NAME_RE = re.compile(r"^\s*(?:theorem|lemma)\s+(?P<name>[A-Za-z_][A-Za-z0-9_'.]*)\s*:", re.MULTILINE)
_HEAD_RE = r"^(\s*(?:theorem|lemma)\s+){name}(\s*:)"


@dataclass(frozen=True)
class AuditPlan:
    """The theories and files one re-check writes (all text ours except ``proof``)."""

    proof_theory: str
    parse_theory: str
    oracle_theory: str
    proof_file: str
    theories: tuple[tuple[str, str], ...]
    files: dict[str, str]


def statement_name(theorem: Theorem) -> str | None:
    """The name the statement declares (``theorem NAME:``)."""
    m = _THM_NAME_RE.search(theorem.statement)
    return m["name"] if m else None


def _ml_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ml_list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(_ml_string(i) for i in items) + "]"


def audit_plan(theorem: Theorem, proof: str) -> AuditPlan | str:
    """The three theories (and the proof as a data file) for re-checking ``proof``; a string says why
    the theorem's own data cannot be audited."""
    name = theory_name(theorem)
    thm = statement_name(theorem)
    if thm is None:
        return "cannot audit: statement is not 'theorem NAME: ...'"
    m = _IMPORTS_RE.search(theorem.header)
    if m is None or not m["imports"].strip():
        return "cannot audit: header has no 'imports ... begin'"
    imports = " ".join(m["imports"].split())
    nonce = secrets.token_hex(4)
    parse_thy, oracle_thy, proof_file = f"Llemma_Parse_{nonce}", f"Llemma_Oracles_{nonce}", f"{name}.proof"
    header = theorem.header if theorem.header.endswith("\n") else theorem.header + "\n"
    proof_theory = (
        f"{header}\ndeclare [[quick_and_dirty = false]]\n\n{theorem.statement}\n{proof.rstrip()}\n\nend\n"
    )
    parse_theory = f"""theory {parse_thy}
  imports {imports}
begin

ML \\<open>
(* llemma-audit: parse {proof_file} *)
val () =
  let
    val path = Path.append (Resources.master_directory \\<^theory>) (Path.basic {_ml_string(proof_file)})
    val keywords = Thy_Header.get_keywords' \\<^context>
    val spans = Outer_Syntax.parse_spans (Token.explode keywords Position.none (File.read path))
    val allowed = {_ml_list(PROOF_COMMANDS)}
    val ml_methods = {_ml_list(ML_METHODS)}
    fun check_token tok =
      if (Token.is_kind Token.Ident tok orelse Token.is_kind Token.Long_Ident tok)
        andalso member (op =) ml_methods (Token.content_of tok)
      then error ("llemma-audit: proof method runs ML: " ^ Token.content_of tok)
      else ()
    fun check (Command_Span.Span (Command_Span.Command_Span (cmd, _), toks)) =
          if member (op =) allowed cmd then List.app check_token toks
          else error ("llemma-audit: not a proof command: " ^ cmd)
      | check (Command_Span.Span (Command_Span.Ignored_Span, _)) = ()
      | check (Command_Span.Span (Command_Span.Malformed_Span, _)) =
          error "llemma-audit: malformed text in the proof"
  in
    if null spans then error "llemma-audit: empty proof" else List.app check spans
  end;
\\<close>

end
"""
    restated = re.sub(
        _HEAD_RE.format(name=re.escape(thm)), r"\1llemma_restated\2", theorem.statement, count=1
    )
    uses_assms = re.search(r"\bassumes\b", theorem.statement) is not None
    restate_proof = f"using assms by (rule {name}.{thm})" if uses_assms else f"by (rule {name}.{thm})"
    oracle_theory = f"""theory {oracle_thy}
  imports "{name}"
begin

{restated}
  {restate_proof}

ML \\<open>
(* llemma-audit: oracles {name}.{thm} *)
val () =
  let
    fun clean th =
      let val {{oracle, unfinished, failed}} = Thm.peek_status th
      in not (oracle orelse unfinished orelse failed) end
    val ths = [Global_Theory.get_thm \\<^theory> {_ml_string(f"{name}.{thm}")}, @{{thm llemma_restated}}]
  in
    if List.all clean ths then ()
    else error "llemma-audit: the proof uses an oracle (sorry, skip_proof, ...) or is unfinished"
  end;
\\<close>

end
"""
    return AuditPlan(
        proof_theory=name,
        parse_theory=parse_thy,
        oracle_theory=oracle_thy,
        proof_file=proof_file,
        theories=((name, proof_theory), (parse_thy, parse_theory), (oracle_thy, oracle_theory)),
        files={proof_file: proof.rstrip() + "\n"},
    )


def audit_verdict(plan: AuditPlan, res: TheoriesCheck) -> str | None:
    """None if the re-check passed; else why not (from node statuses, in the order of the plan)."""
    if res.overall.timed_out:
        return res.overall.first_error()
    for name, what in (
        (plan.proof_theory, "the proof theory"),
        (plan.parse_theory, "Isabelle's parse of the proof"),
        (plan.oracle_theory, "the oracle/statement audit"),
    ):
        node = res.nodes.get(name)
        if node is None:
            return f"{what} ({name}) was not reported by the server"
        if not node.ok:
            return f"{what} failed: {node.first_error()}"
    if not res.overall.ok:
        return f"use_theories not ok: {res.overall.first_error()}"
    return None
