"""What a header brings in (``HeaderFacts``, used by ``recheck``), kept on disk between processes and runs.

``HeaderFacts`` come from trusted text only (the header alone, compiled, audited by ``coqchk -o`` and
searched; no model text), so they depend on nothing but the header and the installed Coq libraries.
Computing them costs a ``coqc``, a ``coqchk`` and a print file (about 2.5 s of CPU for a header with the
real numbers); a run of miniF2F meets about 100 distinct headers, and each worker process used to pay
for each header again. The cache key is the SHA-256 of the header, ``coqc --version``, ``COQPATH`` and
the name, size and modification time of every ``.vo`` and plugin file under ``coqc -where``: another
Coq, a library installed, rebuilt or removed gives other keys. An entry is written atomically (temporary
file, then rename); an entry that does not read back as facts is ignored and computed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .automation import coq_where

__all__ = ["FactsCache", "HeaderFacts", "default_cache_dir"]

#: bumped when the meaning of an entry changes
_FORMAT = 1
_LIBRARY_SUFFIXES = (".vo", ".cmxs")


def default_cache_dir() -> Path:
    """``$LLEMMA_PROVER_CACHE``, else ``$XDG_CACHE_HOME/llemma-prover``, else ``~/.cache/llemma-prover``."""
    explicit = os.environ.get("LLEMMA_PROVER_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llemma-prover"


@dataclass(frozen=True)
class HeaderFacts:
    """What a header brings in, from the header-only library (trusted text, audited by coqchk)."""

    allowed_axioms: frozenset[str]
    #: the library's objects (``Search _ inside``), printed in full by the identity check
    names: tuple[str, ...]


@dataclass
class FactsCache:
    """Header facts on disk under ``directory/coq-header-facts``; ``coqc`` names the installation."""

    directory: Path
    coqc: str = "coqc"
    _installation: str | None = None

    def get(self, header: str) -> HeaderFacts | None:
        try:
            data = json.loads(self._path(header).read_text(encoding="utf-8"))
            if data.get("format") != _FORMAT or data.get("header") != header:
                return None
            axioms, names = data["allowed_axioms"], data["names"]
            if not all(isinstance(x, str) for x in [*axioms, *names]):
                return None
            return HeaderFacts(allowed_axioms=frozenset(axioms), names=tuple(names))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, header: str, facts: HeaderFacts) -> None:
        path = self._path(header)
        data = {
            "format": _FORMAT,
            "header": header,
            "allowed_axioms": sorted(facts.allowed_axioms),
            "names": list(facts.names),
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, path)
        except OSError:  # a cache that cannot be written only costs time
            return

    def _path(self, header: str) -> Path:
        key = hashlib.sha256(f"{_FORMAT}\0{self.installation()}\0{header}".encode()).hexdigest()
        return self.directory / "coq-header-facts" / f"{key}.json"

    def installation(self) -> str:
        """A fingerprint of the Coq installation (computed once per cache object)."""
        if self._installation is None:
            version = subprocess.run(
                [self.coqc, "--version"], capture_output=True, text=True, timeout=60, check=True
            ).stdout
            where = str(coq_where(self.coqc, timeout=60))
            h = hashlib.sha256(f"{version}\0{os.environ.get('COQPATH', '')}\0{where}".encode())
            for root in [where, *filter(None, os.environ.get("COQPATH", "").split(os.pathsep))]:
                for dirpath, dirnames, filenames in os.walk(root):
                    dirnames.sort()
                    for name in sorted(filenames):
                        if name.endswith(_LIBRARY_SUFFIXES):
                            st = os.stat(os.path.join(dirpath, name))
                            h.update(f"{dirpath}/{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            self._installation = h.hexdigest()
        return self._installation
