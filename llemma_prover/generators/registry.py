"""Build the tactic generator a run's plan chose (``make_generator``).

``--generator auto`` is resolved before this, by the plan (``workers/plan.py``: ``resolve_auto``, the one
place that does; the CLI re-plans with the failure when a model chosen by ``auto`` cannot start). An
explicit ``llemma`` that cannot load raises ``GeneratorUnavailable`` saying why and what to do: nothing
ever pretends Llemma ran. Heavy modules (torch, transformers) are imported only when needed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from ..core.config import MODEL_GENERATORS, GeneratorConfig, generator_parts, is_auto
from ..core.errors import ConfigError, GeneratorUnavailable
from .base import TacticGenerator

log = logging.getLogger(__name__)


def make_generator(
    config: GeneratorConfig, backend: str, *, served: TacticGenerator | None = None
) -> tuple[TacticGenerator, str]:
    """A *started* generator for ``config`` and ``backend``, and a one-line note on what runs.

    ``config.name`` is one name of ``FACTORIES`` or several joined by ``+`` (a ``MixtureGenerator``
    of them, see ``mixture.py``); ``auto`` must have been resolved (``resolve_auto``). ``served``: the
    generator that stands for the model part (``llemma``), e.g. the model servers' ``ServerGenerator``;
    it is started here. The caller owns the generator and must ``close()`` it.
    """
    gen, note = _make_plain(config, backend, served)
    if not (config.root_tactic or config.extra_tactics):
        return gen, note
    from .probe import ProbeGenerator

    first = f"first step {config.root_tactic!r}, " if config.root_tactic else ""
    return (ProbeGenerator(gen, config.root_tactic, config.extra_tactics),
            f"{note}; {first}{len(config.extra_tactics)} extra tactics")


def _make_plain(
    config: GeneratorConfig, backend: str, served: TacticGenerator | None
) -> tuple[TacticGenerator, str]:
    if is_auto(config.name):
        raise ConfigError("--generator auto is resolved before a generator is built (resolve_auto)")
    parts = generator_parts(config.name)
    if len(parts) == 1:
        return _make_part(config.name, config, backend, served)
    from .mixture import MixtureGenerator

    built: list[tuple[TacticGenerator, str]] = []
    try:
        for part in parts:
            built.append(_make_part(part, config, backend, served))
    except BaseException:
        for gen, _ in built:
            gen.close()
        raise
    from ..backends.base import data_hooks

    try:
        key = data_hooks(backend).tactic_key
    except ConfigError:
        key = MixtureGenerator.same_spacing
    mixture = MixtureGenerator([g for g, _ in built], key=key)
    return mixture, f"{mixture.name}: mixture of " + "; ".join(note for _, note in built)


def _make_part(part: str, config: GeneratorConfig, backend: str, served: TacticGenerator | None
               ) -> tuple[TacticGenerator, str]:
    if served is not None and part in MODEL_GENERATORS:
        served.start()
        return served, f"{part}: {config.model} on the model servers"
    factory = FACTORIES.get(part)
    if factory is None:
        raise ConfigError(f"unknown generator {part!r}")
    return factory(config, backend)


def _make_replay(config: GeneratorConfig, backend: str) -> tuple[TacticGenerator, str]:
    if not config.replay_file:
        raise ConfigError("--generator replay needs --replay-file FILE")
    from .replay import ReplayGenerator

    gen: TacticGenerator = ReplayGenerator(config.replay_file)
    gen.start()
    return gen, f"replay: tactics from {config.replay_file}"


def _make_bank(config: GeneratorConfig, backend: str) -> tuple[TacticGenerator, str]:
    return _bank(config, backend), "bank: ranked automation tactics"


def _make_llemma(config: GeneratorConfig, backend: str) -> tuple[TacticGenerator, str]:
    return _llemma(config, backend), f"llemma: {config.model}"


def _make_retrieval(config: GeneratorConfig, backend: str) -> tuple[TacticGenerator, str]:
    if not config.retrieval_data:
        raise ConfigError("--generator retrieval needs --retrieval-data DIR (an `extract` output folder)")
    from .retrieval import RetrievalGenerator

    gen = RetrievalGenerator(config.retrieval_data, backend)
    try:
        gen.start()
    except BaseException:
        gen.close()
        raise
    steps = gen.describe()["steps"]
    return gen, f"retrieval: tactics of the nearest goals in {config.retrieval_data} ({steps} steps)"


#: name -> factory(config, backend) returning a started generator and its note
FACTORIES: dict[str, Callable[[GeneratorConfig, str], tuple[TacticGenerator, str]]] = {
    "replay": _make_replay,
    "bank": _make_bank,
    "llemma": _make_llemma,
    "retrieval": _make_retrieval,
}


def _bank(config: GeneratorConfig, backend: str) -> TacticGenerator:
    from .bank import BankGenerator

    gen: TacticGenerator = BankGenerator(
        backend, families=config.bank_families or None, schedule=config.bank_schedule, once=config.bank_once
    )
    gen.start()
    return gen


def _reachable(host: str, port: int, timeout: float) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds (name lookup included:
    it runs in a daemon thread, so a resolver that hangs cannot hold us up)."""
    ok: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, name="hub-probe", daemon=True)
    t.start()
    t.join(timeout)
    return bool(ok)


def check_model_reachable(config: GeneratorConfig, timeout: float = 3.0) -> None:
    """Fail fast (``GeneratorUnavailable``) when ``config.model`` is neither a local path nor in the
    Hugging Face cache and the Hub cannot be reached: otherwise loading spends ~40 s or more in
    download retries before it fails. A model in the cache, a local folder, ``HF_HUB_OFFLINE=1`` (the
    loaders then fail fast themselves) or a reachable Hub all pass."""
    model = config.model
    if Path(model).expanduser().exists():
        return
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        return
    try:
        from huggingface_hub import constants, try_to_load_from_cache
    except ImportError:
        return
    try:
        if isinstance(try_to_load_from_cache(model, "config.json"), str):
            return
    except Exception:  # noqa: BLE001 - not a valid repo id: the loader gives the precise error
        return
    url = urlparse(constants.ENDPOINT)
    host = url.hostname or "huggingface.co"
    if _reachable(host, url.port or (443 if url.scheme == "https" else 80), timeout):
        return
    raise GeneratorUnavailable(
        f"model {model!r} is not a local folder nor in the Hugging Face cache, and {host} cannot be reached "
        f"(offline?); download it where there is internet (huggingface-cli download {model}) and pass "
        "--model with its local folder, or use --generator bank"
    )


def _llemma(config: GeneratorConfig, backend: str) -> TacticGenerator:
    """Import, build and load the LM generator; any failure becomes ``GeneratorUnavailable``."""
    check_model_reachable(config)
    try:
        from .llemma import LlemmaGenerator
    except ImportError as exc:
        raise GeneratorUnavailable(
            f"llemma generator needs torch and transformers ({exc}); "
            "install them with the README's set-up command, or use --generator bank"
        ) from exc
    gen: TacticGenerator = LlemmaGenerator(config, backend)
    try:
        gen.start()
    except GeneratorUnavailable:
        gen.close()
        raise
    except Exception as exc:  # model loading raises many kinds (OSError, ValueError, RuntimeError ...)
        gen.close()
        raise GeneratorUnavailable(
            f"cannot load model {config.model!r}: {type(exc).__name__}: {exc}. "
            "Pass --model with a local path or a model id that is available offline "
            "(weights must be downloadable or cached), or use --generator bank"
        ) from exc
    return gen
