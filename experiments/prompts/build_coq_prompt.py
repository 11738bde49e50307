"""Build (or check) the Coq few-shot prompt from real Coq 8.16 output.

Every example is a small theorem written for this project (none is a miniF2F problem). For each one
we compile, with ``coqc``, a file that states the theorem, runs the tactics before the example, prints
the open goals, runs the example's tactic, finishes the proof and ends with ``Qed.``; the file must
compile, so every tactic in the prompt is one that works on that very state. The example's "Tactic
state" is what the Coq backend itself shows a generator there (its goal text, built from Coq's own goal
records), obtained by running the same tactics through the backend.

    python experiments/prompts/build_coq_prompt.py          # rewrite the packaged coq.txt
    python experiments/prompts/build_coq_prompt.py --check  # exit 1 if it differs from a fresh build
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from llemma_prover.backends.base import make_backend  # noqa: E402
from llemma_prover.core.config import ProverConfig  # noqa: E402
from llemma_prover.core.types import Advanced, Theorem  # noqa: E402
from llemma_prover.generators.prompts import format_example  # noqa: E402

TARGET = REPO / "llemma_prover" / "generators" / "prompts" / "coq.txt"
INSTRUCTION = "Given the Coq tactic state, suggest a next tactic.\nHere are some examples:\n"
HEADER = "Require Import Arith ZArith Reals Lia Lra Psatz.\n"
BEGIN, END = "@@STATE-BEGIN@@", "@@STATE-END@@"


@dataclass(frozen=True)
class Example:
    name: str
    scope: str
    statement: str
    before: tuple[str, ...]  # tactics run before the shown state
    tactic: str  # the example's tactic
    after: tuple[str, ...]  # tactics that finish the proof
    goals: int  # goals shown in the state


EXAMPLES = (
    Example("ex_intro_nia", "Z_scope",
            "forall a b : Z, 0 < a -> 0 < b -> 0 < a * b + a.",
            (), "intros a b ha hb.", ("nia.",), 1),
    Example("ex_lra_system", "R_scope",
            "forall x y : R, x + y = 10 -> x - y = 2 -> x = 6.",
            ("intros x y h0 h1.",), "lra.", (), 1),
    Example("ex_field", "R_scope",
            "forall x : R, 0 < x -> (x * x + x) / x = x + 1.",
            ("intros x hx.",), "field; lra.", (), 1),
    Example("ex_induction", "nat_scope",
            "forall n : nat, 3 ^ n >= 1.",
            (), "induction n as [| n IH].", ("simpl; lia.", "simpl; lia."), 1),
    Example("ex_induction_step", "nat_scope",
            "forall n : nat, 3 ^ n >= 1.",
            ("induction n as [| n IH].",), "simpl; lia.", ("simpl; lia.",), 2),
    Example("ex_rewrite", "R_scope",
            "forall f : R -> R, (forall x, f x = 2 * x + 3) -> f 4 = 11.",
            ("intros f hf.",), "rewrite hf; lra.", (), 1),
    Example("ex_compute", "Z_scope",
            "(29 * 31) mod 7 = 3.",
            (), "reflexivity.", (), 1),
    Example("ex_nra", "R_scope",
            "forall a b : R, a ^ 2 + b ^ 2 >= 2 * a * b.",
            ("intros a b.",), "pose proof (pow2_ge_0 (a - b)) as h; nra.", (), 1),
)


def _source(ex: Example) -> str:
    return "\n".join([
        HEADER.rstrip("\n"),
        f"Open Scope {ex.scope}.",
        f"Theorem {ex.name} : {ex.statement}",
        "Proof.",
        *ex.before,
        f'idtac "{BEGIN}".',
        "Show.",
        f'idtac "{END}".',
        ex.tactic,
        *ex.after,
        "Qed.",
        "",
    ])


def state_of(ex: Example, workdir: Path) -> str:
    """The goals printed before ``ex.tactic``; raises if the file does not compile."""
    path = workdir / f"{ex.name}.v"
    path.write_text(_source(ex), encoding="utf-8")
    proc = subprocess.run(["coqc", "-q", path.name], cwd=workdir, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{ex.name}: coqc failed:\n{proc.stdout}\n{proc.stderr}")
    thm = Theorem(name=ex.name, split="valid", system="coq", header=HEADER + f"Open Scope {ex.scope}.\n",
                  statement=f"Theorem {ex.name} : {ex.statement}")
    with make_backend("coq", ProverConfig()) as backend:
        state = backend.start_theorem(thm)
        for tac in ex.before:
            step = backend.apply(state.state_id, tac)
            if not isinstance(step, Advanced):
                raise RuntimeError(f"{ex.name}: {tac!r} did not advance: {step}")
            state = step  # type: ignore[assignment]
    if len(state.goals) != ex.goals:
        raise RuntimeError(f"{ex.name}: expected {ex.goals} goals, the backend shows:\n{state.goal_text}")
    return state.goal_text


def build() -> str:
    parts = [INSTRUCTION]
    with tempfile.TemporaryDirectory() as tmp:
        for ex in EXAMPLES:
            parts.append(format_example(state_of(ex, Path(tmp)), ex.tactic.strip()) + "\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the packaged file instead of writing")
    ap.add_argument("--out", type=Path, default=TARGET)
    args = ap.parse_args(argv)
    text = build()
    if args.check:
        same = args.out.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{args.out} differs from a fresh build")
        return 0 if same else 1
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(EXAMPLES)} examples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
