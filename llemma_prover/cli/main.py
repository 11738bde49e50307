"""``llemma-prover`` and its ``prove`` alias: parse, configure logging once, call the library.

Subcommands are modules listed in ``SUBCOMMANDS``; each has ``add_parser(subparsers)`` (returning the
sub-parser) and ``run(args) -> int``. To add one, write the module and append it here.
A ``UserError`` is printed as one line on stderr (exit 2); Ctrl-C exits 130 after a clean shutdown.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from rich.console import Console

from ..core.errors import UserError

#: (name, module) of every subcommand; modules are imported only when the parser is built
SUBCOMMANDS: list[tuple[str, str]] = [
    ("prove", "llemma_prover.cli.prove"),
    ("autoformalize", "llemma_prover.cli.autoformalize_cmd"),
    ("trace", "llemma_prover.cli.trace_cmd"),
    ("report", "llemma_prover.cli.report_cmd"),
    ("import", "llemma_prover.cli.import_cmd"),
    ("contamination", "llemma_prover.cli.contamination_cmd"),
    ("extract", "llemma_prover.cli.extract_cmd"),
    ("doctor", "llemma_prover.cli.doctor_cmd"),
    ("train", "llemma_prover.cli.train_cmd"),
]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

log = logging.getLogger("llemma_prover.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llemma-prover",
        description="LLM-guided best-first proof search on miniF2F (Coq, Lean 4, Isabelle).",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name in SUBCOMMANDS:
        module = importlib.import_module(module_name)
        sp = module.add_parser(sub)
        # -v/-q also after the subcommand (``prove -v``); SUPPRESS keeps the top-level value otherwise
        sp.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output")
        sp.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="warnings only")
        sp.set_defaults(_run=module.run, _command=name)
    return parser


def configure_logging(verbose: int, quiet: bool, console: Console) -> None:
    """One handler on stderr (through rich on a terminal, so progress bars stay intact).

    stderr shows warnings (``-v``: info, ``-vv``: debug); the package logs at info so that a run's
    ``run.log`` (a file handler the run adds) gets the per-theorem lines.
    """
    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    if quiet:
        level = logging.WARNING
    handler: logging.Handler
    if console.is_terminal:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_path=False, rich_tracebacks=False, markup=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    handler.setLevel(level)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("llemma_prover").setLevel(min(level, logging.INFO))


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(args_list)
    args._argv = args_list
    args._console = Console(stderr=True, soft_wrap=True)
    configure_logging(args.verbose, args.quiet, args._console)
    try:
        return int(args._run(args))
    except UserError as exc:
        msg = " ".join(str(exc).split())
        print(f"llemma-prover {args._command}: error: {msg}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"llemma-prover {args._command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def prove_main(argv: Sequence[str] | None = None) -> int:
    """The ``prove`` console script: ``llemma-prover prove ...``."""
    rest = list(sys.argv[1:] if argv is None else argv)
    return main(["prove", *rest])


if __name__ == "__main__":
    sys.exit(main())
