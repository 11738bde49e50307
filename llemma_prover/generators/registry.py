"""Build the tactic generator a run asked for, resolving ``auto``.

``auto`` uses ``llemma`` when a GPU is there and the model's weights load, else ``bank``; the
returned note says which ran and why (the CLI prints it at start, the run records it). An explicit
``llemma`` that cannot load raises ``GeneratorUnavailable`` saying why and what to do: nothing
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

from ..core.config import GeneratorConfig, generator_parts
from ..core.errors import ConfigError, GeneratorError, GeneratorUnavailable
from .base import TacticGenerator

log = logging.getLogger(__name__)


def detect_gpu() -> bool:
    """Whether torch sees a CUDA device (False when torch itself is missing)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def make_generator(
    config: GeneratorConfig, backend: str, *, gpu_available: bool | None = None
) -> tuple[TacticGenerator, str]:
    """A *started* generator for ``config`` and ``backend``, and a one-line note on what runs.

    ``config.name`` is one name of ``FACTORIES`` or several joined by ``+`` (a ``MixtureGenerator``
    of them, see ``mixture.py``). ``gpu_available`` overrides GPU detection (tests; a driver that
    already knows). The caller owns the generator and must ``close()`` it.
    """
    gen, note = _make_plain(config, backend, gpu_available)
    if not (config.root_tactic or config.extra_tactics):
        return gen, note
    from .probe import ProbeGenerator

    first = f"first step {config.root_tactic!r}, " if config.root_tactic else ""
    return (ProbeGenerator(gen, config.root_tactic, config.extra_tactics),
            f"{note}; {first}{len(config.extra_tactics)} extra tactics")


def _make_plain(
    config: GeneratorConfig, backend: str, gpu_available: bool | None
) -> tuple[TacticGenerator, str]:
    parts = generator_parts(config.name)
    if len(parts) == 1:
        factory = FACTORIES.get(config.name)
        if factory is None:
            raise ConfigError(f"unknown generator {config.name!r}")
        return factory(config, backend, gpu_available)
    from .mixture import MixtureGenerator

    built: list[tuple[TacticGenerator, str]] = []
    try:
        for part in parts:
            factory = FACTORIES.get(part)
            if factory is None or part == "auto":
                raise ConfigError(f"cannot mix generator {part!r}")
            built.append(factory(config, backend, gpu_available))
    except BaseException:
        for gen, _ in built:
            gen.close()
        raise
    from ..backends.base import backend_class

    try:
        key = backend_class(backend).tactic_key
    except ConfigError:
        key = MixtureGenerator.same_spacing
    mixture = MixtureGenerator([g for g, _ in built], key=key)
    return mixture, f"{mixture.name}: mixture of " + "; ".join(note for _, note in built)


def _make_replay(config: GeneratorConfig, backend: str, gpu: bool | None) -> tuple[TacticGenerator, str]:
    if not config.replay_file:
        raise ConfigError("--generator replay needs --replay-file FILE")
    from .replay import ReplayGenerator

    gen: TacticGenerator = ReplayGenerator(config.replay_file)
    gen.start()
    return gen, f"replay: tactics from {config.replay_file}"


def _make_bank(config: GeneratorConfig, backend: str, gpu: bool | None) -> tuple[TacticGenerator, str]:
    return _bank(config, backend), "bank: ranked automation tactics"


def _make_llemma(config: GeneratorConfig, backend: str, gpu: bool | None) -> tuple[TacticGenerator, str]:
    return _llemma(config, backend), f"llemma: {config.model}"


def _make_retrieval(config: GeneratorConfig, backend: str, gpu: bool | None) -> tuple[TacticGenerator, str]:
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


def _make_auto(config: GeneratorConfig, backend: str, gpu: bool | None) -> tuple[TacticGenerator, str]:
    has_gpu = detect_gpu() if gpu is None else gpu
    if not has_gpu:
        return _bank(config, backend), "auto: no GPU found, using bank"
    try:
        gen = _llemma(config, backend)
    except GeneratorError as exc:
        log.warning("auto: llemma could not load, using bank: %s", exc)
        return _bank(config, backend), f"auto: llemma could not load ({exc}), using bank"
    return gen, f"auto: GPU found, using llemma ({config.model})"


#: name -> factory(config, backend, gpu_available) returning a started generator and its note
FACTORIES: dict[str, Callable[[GeneratorConfig, str, bool | None], tuple[TacticGenerator, str]]] = {
    "replay": _make_replay,
    "bank": _make_bank,
    "llemma": _make_llemma,
    "retrieval": _make_retrieval,
    "auto": _make_auto,
}


def _bank(config: GeneratorConfig, backend: str) -> TacticGenerator:
    from .bank import BankGenerator

    gen: TacticGenerator = BankGenerator(
        backend, families=config.bank_families or None, schedule=config.bank_schedule
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
