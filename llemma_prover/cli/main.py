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
    ("prove", "llemma_prover.cli.prove_cmd"),
    ("autoformalize", "llemma_prover.cli.autoformalize_cmd"),
    ("trace", "llemma_prover.cli.trace_cmd"),
    ("report", "llemma_prover.cli.report_cmd"),
    ("import", "llemma_prover.cli.import_cmd"),
    ("contamination", "llemma_prover.cli.contamination_cmd"),
    ("extract", "llemma_prover.cli.extract_cmd"),
    ("doctor", "llemma_prover.cli.doctor_cmd"),
    ("train", "llemma_prover.cli.train_cmd"),
    ("audit", "llemma_prover.cli.audit_cmd"),
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


#: libraries that attach their own stderr handler to their top logger when imported (and stop it from
#: propagating): their records go to our handlers instead, so the terminal filter and ``run.log`` see them
SELF_CONFIGURING_LOGGERS = ("ray", "transformers", "vllm", "datasets", "huggingface_hub")

OWN_LOGGER = "llemma_prover"


class OwnRecordsOnly(logging.Filter):
    """The terminal's filter: the package's own records at the chosen level; another library's records
    (Ray's token-authentication notice, ``warnings.warn`` from torch or transformers) only with ``-v``
    or when they are errors. ``run.log`` has no such filter and keeps them all."""

    def __init__(self, show_others: bool) -> None:
        super().__init__()
        self.show_others = show_others

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name == OWN_LOGGER or record.name.startswith(OWN_LOGGER + ".")
        return own or self.show_others or record.levelno >= logging.ERROR


class _PropagatingLogger(logging.Logger):
    """A library's top logger that keeps no handler of its own and always propagates to the root."""

    def addHandler(self, hdlr: logging.Handler) -> None:  # noqa: N802 (logging's own name)
        return None

    @property
    def propagate(self) -> bool:
        return True

    @propagate.setter
    def propagate(self, value: bool) -> None:
        return None


def route_library_loggers(names: Sequence[str] = SELF_CONFIGURING_LOGGERS) -> None:
    """Make each library logger in ``names`` hand its records to the root's handlers. A library not yet
    imported gets a logger that ignores the handler it will try to add (Ray adds one on ``import ray``);
    one already imported loses its handlers now."""
    manager = logging.Logger.manager
    for name in names:
        existing = manager.loggerDict.get(name)
        if isinstance(existing, logging.Logger):
            for handler in list(existing.handlers):
                existing.removeHandler(handler)
            existing.propagate = True
            continue
        previous = logging.getLoggerClass()
        logging.setLoggerClass(_PropagatingLogger)
        try:
            logging.getLogger(name)
        finally:
            logging.setLoggerClass(previous)


def configure_logging(verbose: int, quiet: bool, console: Console) -> None:
    """One handler on stderr (through rich on a terminal, so progress bars stay intact).

    stderr shows warnings (``-v``: info, ``-vv``: debug); the package logs at info so that a run's
    ``run.log`` (a file handler the run adds) gets the per-theorem lines. Other libraries' records and
    Python warnings reach the terminal only with ``-v`` (or as errors); ``run.log`` keeps them.
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
    handler.addFilter(OwnRecordsOnly(show_others=verbose >= 1 and not quiet))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger(OWN_LOGGER).setLevel(min(level, logging.INFO))
    logging.captureWarnings(True)  # warnings.warn(...) -> the "py.warnings" logger -> filtered above
    route_library_loggers()


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
