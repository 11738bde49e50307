"""The ``prove`` subcommand: miniF2F-style theorems (``prove.py``) or a library's lemmas in their files
(``prove --library``: ``prove_library.py``). Both import ``prove.py``'s config building; this module
only picks one, so neither of them imports the other."""

from __future__ import annotations

import argparse

from . import prove, prove_library

add_parser = prove.add_parser


def run(args: argparse.Namespace) -> int:
    prove._check_flags(prove.with_config_file(args))  # flag errors first, before the data is looked for
    if prove.with_config_file(args).library:
        return prove_library.run_library(args)
    return prove.run(args)
