"""Configuration as plain, frozen data.

Built once in the CLI's ``main()`` (from flags, or from a YAML/JSON file) and passed down; nothing
reads the environment or globals after that. Every number that governs time, memory or restarts
lives here under a name, so that a run's ``config.json`` states the whole policy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

BACKENDS: tuple[str, ...] = ("coq", "lean4", "leandojo", "isabelle")
#: ``--generator auto``: resolved by ``workers.plan.resolve_auto`` (the one place that does) to
#: ``AUTO_WITH_MODEL`` on a machine with a GPU, else to ``AUTO_WITHOUT_MODEL`` (``prove``; ``autoformalize``:
#: to its ``NO_DRAFTS`` drafter)
AUTO = "auto"
AUTO_WITH_MODEL = "llemma"
AUTO_WITHOUT_MODEL = "bank"
GENERATORS: tuple[str, ...] = (AUTO, "llemma", "bank", "replay", "retrieval")
#: generators that can be parts of a ``+``-joined mixture (``bank+retrieval``)
MIXABLE: tuple[str, ...] = ("llemma", "bank", "replay", "retrieval")
#: generators that run a language model (model servers, GPUs, the model id in the run's identity)
MODEL_GENERATORS: tuple[str, ...] = ("llemma",)
#: generators without a model that rank cheap tactics: they (and their mixtures) get ``BANK_SEARCH``
BANK_BUDGET_GENERATORS: tuple[str, ...] = ("bank", "retrieval")
#: the names above are compared nowhere else than here and in ``generators/``
#: (``tests/test_generator_branches.py``); everyone else asks these functions


def generator_parts(name: str) -> tuple[str, ...]:
    """The generators named by ``name`` (``"bank+retrieval"`` -> ``("bank", "retrieval")``)."""
    return tuple(p.strip() for p in name.split("+"))


def is_auto(name: str) -> bool:
    """Whether ``name`` is ``--generator auto`` (still to be resolved)."""
    return name == AUTO


def uses_model(name: str) -> bool:
    """Whether generator ``name`` (one name or a mixture) runs a language model: model servers start
    for it, workers reserve GPUs for it. ``auto`` is not resolved here (see ``may_use_model``)."""
    return any(p in MODEL_GENERATORS for p in generator_parts(name))


def may_use_model(name: str) -> bool:
    """Whether generator ``name`` runs a model or is ``auto`` (which may resolve to one)."""
    return is_auto(name) or uses_model(name)


def reads_replay_file(name: str) -> bool:
    """Whether generator (or sketch drafter) ``name`` replays what a ``--replay-file`` holds."""
    return "replay" in generator_parts(name)


#: ``autoformalize``'s sketch drafters: a language model, sketches replayed from a file, or no sketch
#: (``NO_DRAFTS``: one hole for the whole proof, pure automation)
NO_DRAFTS = "none"
DRAFTERS: tuple[str, ...] = ("llemma", "replay", NO_DRAFTS)


def drafts_nothing(name: str) -> bool:
    """Whether drafter ``name`` writes no sketch (the whole proof is one hole)."""
    return name == NO_DRAFTS


def uses_bank_budgets(name: str) -> bool:
    """Whether the bank's budgets (``BANK_SEARCH``) are the defaults for generator ``name``."""
    return set(generator_parts(name)) <= set(BANK_BUDGET_GENERATORS)
SPLITS: dict[str, str] = {"minif2f-test": "test", "minif2f-valid": "valid"}
#: the ``split`` of a run over a ``--dataset FILE`` (the file is recorded in ``dataset``)
DATASET_SPLIT = "dataset"
#: ``--split`` of a ``prove --library`` run: ``extract``'s by-file split of the library
LIBRARY_SPLITS: tuple[str, ...] = ("train", "valid", "test")
#: which data folder a backend reads (leandojo reads the Lean 4 statements)
DATA_SYSTEM: dict[str, str] = {"coq": "coq", "lean4": "lean4", "leandojo": "lean4", "isabelle": "isabelle"}


def validate_selection(split: str, backend: str, workers: int, limit: int | None) -> None:
    """Checks shared by every run configuration (``prove``, ``autoformalize``)."""
    if split not in SPLITS and split != DATASET_SPLIT:
        raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {workers}")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")


def validate_dataset(split: str, dataset: str) -> None:
    """A run reads a ``--dataset`` file exactly when its split is ``DATASET_SPLIT``."""
    if (split == DATASET_SPLIT) != bool(dataset):
        raise ConfigError(f"split {split!r} and dataset {dataset!r} do not go together")


@dataclass(frozen=True)
class SearchConfig:
    """Best-first search budgets. Defaults are the Llemma evaluation's settings."""

    candidates: int = 32
    max_expansions: int = 100
    time_budget: float = 600.0
    #: deepest proof the search will extend (None: unbounded)
    max_depth: int | None = None
    #: run ``Tree.check_invariants()`` after every expansion (slow; for debugging and tests)
    debug_invariants: bool = False
    #: a candidate of stage ``s`` (``Candidate.stage``) runs when its node is popped again at the
    #: node's priority minus ``s * stage_penalty``: a penalty larger than any path's score range makes
    #: every stage-0 tactic of the whole tree run before any stage-1 tactic (iterative deepening by
    #: cost). Each pop that runs a stage counts as one expansion.
    stage_penalty: float = 0.0

    def validate(self) -> None:
        if self.candidates < 1:
            raise ConfigError(f"--candidates must be >= 1, got {self.candidates}")
        if self.max_expansions < 1:
            raise ConfigError(f"--max-expansions must be >= 1, got {self.max_expansions}")
        if self.time_budget <= 0:
            raise ConfigError(f"--time-budget must be > 0 seconds, got {self.time_budget}")
        if self.stage_penalty < 0:
            raise ConfigError(f"stage_penalty must be >= 0, got {self.stage_penalty}")


#: Search budgets of the Llemma evaluation (best-first, 32 candidates, 100 expansions, 600 s).
LLEMMA_SEARCH = SearchConfig()

#: Budgets for the automation ``bank`` generator. A bank proposes the same few dozen tactics at every
#: node, so most of what it can prove it proves within a few expansions; 600 s per theorem would only
#: spend time on problems it cannot prove. Measured with 2 workers on a shared 2-core machine:
#: ``prove --split minif2f-test`` 72/244 proved in 5 min wall, minif2f-valid 73/244 in 5 min; the
#: search usually exhausts the bank's few children (``intros``/``split``/``field`` side goals) long
#: before its 24 expansions or 12 s, which only bound the rare slow theorem (the valid study in
#: docs/bank.md: doubling both solved nothing more). The 12 s were tuned on Coq with a 5 s tactic
#: timeout; ``bank_search`` scales them with another backend's tactic timeout.
BANK_SEARCH = SearchConfig(candidates=64, max_expansions=24, time_budget=12.0, stage_penalty=1000.0)

#: Cost classes of the bank's tactics: class -> (search stage, Coq timeout in whole seconds (Coq's
#: ``timeout`` takes an integer); 0 = none, the
#: backend's ``tactic_timeout`` alone). With ``BANK_SEARCH.stage_penalty`` larger than any path's
#: score range, every stage-0 tactic of the whole search tree runs before any stage-1 tactic anywhere
#: (iterative deepening by cost). The timeout is Coq's own ``timeout N (tactic)``: a tactic that hits
#: it is an ordinary failure, so the prover process is kept (a backend timeout replaces the process);
#: it stays below the default ``tactic_timeout`` (5 s), which remains the outer bound.
#: ``expensive`` was 4 s until issue 21: on miniF2F-valid its slowest success in four full runs took
#: 2.28 s (sauto, on a loaded machine; 0.84-1.87 s on a quiet one) while its timeouts were a third of
#: the search's seconds (docs/bank.md).
BANK_SCHEDULE: dict[str, tuple[int, int]] = {
    "step": (0, 0),  # intros, split, destruct, ...: instantaneous, never wrapped
    "cheap": (0, 2),  # lia, lra, nra, ... closers
    "medium": (1, 3),  # psatz degree 2, nra/nia with hints, nia after a case split
    "expensive": (2, 3),  # CoqHammer's sauto/hauto, psatz degree 3
}

#: Cost classes whose tactics the bank proposes at most once per theorem: at the first node that
#: they fit (``generators/bank.py``). On miniF2F-valid every proof by an expensive tactic came from
#: its first attempt in the theorem's search (four full runs), while the later attempts cost 37 s of
#: a run's search (docs/bank.md).
BANK_ONCE: tuple[str, ...] = ("expensive",)


def bank_search(tactic_timeout: float) -> SearchConfig:
    """``BANK_SEARCH`` for a backend whose default tactic timeout is ``tactic_timeout``: the time budget
    scaled by ``tactic_timeout / BANK_TUNED_TACTIC_TIMEOUT`` (never below the tuned 12 s), so that a
    backend whose one timed-out tactic costs 30 s (Lean 4) is not held to a budget tuned on Coq's 5 s."""
    scale = max(1.0, tactic_timeout / BANK_TUNED_TACTIC_TIMEOUT)
    return dataclasses.replace(BANK_SEARCH, time_budget=BANK_SEARCH.time_budget * scale)


#: the tactic timeout ``BANK_SEARCH`` was tuned with (Coq's default, ``ProverConfig.tactic_timeout``)
BANK_TUNED_TACTIC_TIMEOUT = 5.0

#: default seconds per tactic of the Lean backends (lean4, leandojo; their ``default_config``): a
#: timed-out tactic kills the REPL, and its replacement re-imports Mathlib
LEAN_TACTIC_TIMEOUT = 30.0


def effective_search(generator: str, candidates: int | None, max_expansions: int | None,
                     time_budget: float | None, base: SearchConfig | None = None,
                     tactic_timeout: float = BANK_TUNED_TACTIC_TIMEOUT) -> SearchConfig:
    """Budgets: each value not given explicitly comes from ``BANK_SEARCH`` for the bank generator (and
    its mixtures with ``retrieval``: generators without a model), scaled to the backend's default
    ``tactic_timeout`` (``bank_search``), from the Llemma evaluation's defaults otherwise."""
    defaults = base or (bank_search(tactic_timeout) if uses_bank_budgets(generator) else LLEMMA_SEARCH)
    return dataclasses.replace(
        defaults,
        candidates=defaults.candidates if candidates is None else candidates,
        max_expansions=defaults.max_expansions if max_expansions is None else max_expansions,
        time_budget=defaults.time_budget if time_budget is None else time_budget,
    )


@dataclass(frozen=True)
class ProverConfig:
    """Process policy of a prover backend: timeouts, memory, restarts, recycling."""

    #: seconds one tactic may run before it counts as a timeout and its process is replaced
    tactic_timeout: float = 5.0
    #: seconds to start a process and load a theorem's header and statement
    start_timeout: float = 120.0
    #: seconds for the independent whole-proof re-check (not part of the search's ``time_budget``)
    check_timeout: float = 300.0
    #: address-space cap per prover process (MiB); 0 disables
    memory_limit_mb: int = 4096
    #: restarts allowed while proving one theorem before the search ends with ``prover_crash``
    max_restarts: int = 25
    #: a process is replaced after serving this many requests (0: never)
    recycle_after: int = 2000
    #: a process is replaced when its resident memory exceeds this (MiB; 0: never)
    recycle_rss_mb: int = 1536
    #: keep a spare, already-started process ready so a restart does not wait for startup
    warm_spare: bool = True
    #: path of the prover executable, when not the default found on PATH
    executable: str | None = None
    #: confinement of prover processes: "auto" (rlimits + scrubbed env + private tmpdir + no
    #: network where the OS allows it: bubblewrap or ``unshare --net``), "rlimits" (all but the
    #: network isolation). See ``backends/sandbox.py``; config.json records what was active.
    sandbox: str = "auto"
    #: CPU seconds a prover process may use in all (RLIMIT_CPU; 0: unlimited)
    cpu_limit_s: int = 0

    def with_flags(self, *, tactic_timeout: float | None = None, sandbox: str | None = None,
                   executable: str | None = None) -> ProverConfig:
        """This policy (a backend's ``default_config``) with what the flags set (None: not given)."""
        return dataclasses.replace(
            self,
            tactic_timeout=self.tactic_timeout if tactic_timeout is None else tactic_timeout,
            sandbox=self.sandbox if sandbox is None else sandbox,
            executable=self.executable if executable is None else executable,
        )

    def validate(self) -> None:
        if self.tactic_timeout <= 0:
            raise ConfigError(f"--tactic-timeout must be > 0 seconds, got {self.tactic_timeout}")
        if self.memory_limit_mb < 0:
            raise ConfigError("memory limit must be >= 0")
        if self.sandbox not in ("auto", "rlimits"):
            raise ConfigError(f"unknown sandbox mode {self.sandbox!r}; choose auto or rlimits")


@dataclass(frozen=True)
class GeneratorConfig:
    """Which tactic generator, and how it decodes."""

    name: str = "auto"
    model: str = "EleutherAI/llemma_7b"
    replay_file: str | None = None
    #: an ``extract`` output folder (steps.jsonl) for the retrieval generator
    retrieval_data: str | None = None
    #: 0 means beam search (deterministic); > 0 means sampling at that temperature
    temperature: float = 0.0
    max_new_tokens: int = 128
    #: candidates generated per forward batch (sampling) / beams (beam search)
    batch_size: int = 32
    #: "auto" (cuda when available), "cpu", "cuda", "cuda:1", ...
    device: str = "auto"
    #: "auto" (bf16 on GPU, fp32 on CPU), "bfloat16", "float16", "float32"
    dtype: str = "auto"
    #: extra keyword arguments for ``from_pretrained`` (e.g. ``{"gguf_file": "x.gguf"}``)
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    #: CPU threads torch may use in this process (0: torch's default)
    torch_threads: int = 1
    #: ``bank``: the components (candidate families) in use; empty = all (``generators/bank.py``)
    bank_families: tuple[str, ...] = ()
    #: ``bank``: cost class -> (search stage, Coq timeout in seconds), see ``BANK_SCHEDULE``
    bank_schedule: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(BANK_SCHEDULE))
    #: ``bank``: the cost classes proposed at most once per theorem, see ``BANK_ONCE`` (empty: none)
    bank_once: tuple[str, ...] = BANK_ONCE
    #: the only candidate at the root, so every proof starts with it ("": none; ``audit``'s probes)
    root_tactic: str = ""
    #: candidates offered below the root before the generator's own (``audit``'s witness family)
    extra_tactics: tuple[str, ...] = ()

    def validate(self) -> None:
        parts = generator_parts(self.name)
        if len(parts) == 1 and self.name not in GENERATORS:
            raise ConfigError(f"unknown generator {self.name!r}; choose one of {', '.join(GENERATORS)}, "
                              "or join several with + (bank+retrieval)")
        if len(parts) > 1:
            bad = [p for p in parts if p not in MIXABLE]
            if bad:
                raise ConfigError(f"cannot mix generator {bad[0]!r}; mix any of {', '.join(MIXABLE)} "
                                  "(e.g. bank+retrieval)")
            if len(set(parts)) != len(parts):
                raise ConfigError(f"generator {self.name!r} names a generator twice")
        if reads_replay_file(self.name) and not self.replay_file:
            raise ConfigError("--generator replay needs --replay-file FILE")
        if "retrieval" in parts and not self.retrieval_data:
            raise ConfigError("--generator retrieval needs --retrieval-data DIR (an `extract` output folder)")
        if self.temperature < 0:
            raise ConfigError("--temperature must be >= 0")
        for cls, (stage, timeout) in self.bank_schedule.items():
            if int(stage) != stage or stage < 0 or int(timeout) != timeout or timeout < 0:
                raise ConfigError(f"bank schedule {cls!r}: stage and timeout must be whole numbers >= 0")
        unknown = sorted(set(self.bank_once) - set(self.bank_schedule))
        if unknown:
            raise ConfigError(f"bank_once names cost classes the schedule lacks: {', '.join(unknown)}")


#: ``--engine`` choices: ``hf`` (transformers, our batched decoder), ``vllm`` (optional), ``auto``
ENGINES: tuple[str, ...] = ("auto", "hf", "vllm")


@dataclass(frozen=True)
class ServerConfig:
    """How the model servers run. Recorded in ``config.json`` beside the ``GeneratorConfig``."""

    #: ``auto`` picks vllm when it is installed and a GPU is there, else ``hf``
    engine: str = "auto"
    #: servers to start; 0 = one per GPU in the Ray cluster (one on CPU when there is none)
    num_servers: int = 0
    #: how long the first request of a batch waits for others to join it (seconds)
    max_wait: float = 0.005
    #: most decoding rows (sum of ``k`` over the batched requests) in one batch: bounds KV-cache memory
    max_batch_rows: int = 128
    #: reuse the key/value cache of the shared few-shot prefix (``hf`` engine)
    prefix_cache: bool = True
    #: CPUs the Ray scheduler reserves for each server
    num_cpus: float = 1.0
    #: fraction of GPU memory vLLM may take
    gpu_memory_utilization: float = 0.9
    #: widest beam the vllm engine serves: it is built with ``max_logprobs = 2 * max_beam_width``
    max_beam_width: int = 64
    #: build a randomly initialised Llama from this ``LlamaConfig`` dict instead of loading weights
    #: (benchmarks and tests: speed does not depend on the weights' values); the tokenizer still
    #: comes from ``GeneratorConfig.model``
    random_init: dict[str, Any] | None = field(default=None)

    def validate(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        if self.num_servers < 0:
            raise ConfigError("--model-servers must be >= 0")
        if self.max_wait < 0:
            raise ConfigError("the batching wait window must be >= 0 seconds")
        if self.max_batch_rows < 1:
            raise ConfigError("max_batch_rows must be >= 1")
        if self.max_beam_width < 1:
            raise ConfigError("max_beam_width must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LibraryConfig:
    """``prove --library``: which lemmas of which library, and how they are attempted in context
    (``library/``, ``backends/coq/library_session.py``). Recorded whole in ``config.json``."""

    #: "coq-stdlib" or the folder of a library's ``.v`` files (absolute)
    library: str = "coq-stdlib"
    #: the logical name of a folder library (None: the folder's name, or its path in user-contrib)
    logical: str | None = None
    #: ``extract``'s by-file split (``file_split``)
    split: str = "test"
    #: only these files (paths relative to the library root); empty: every file of the split
    files: tuple[str, ...] = ()
    #: a fixed random sample of this many lemmas (None: all), drawn with ``seed`` before anything runs
    sample: int | None = None
    seed: int = 0
    #: the sampled lemma ids (``rel:name``), in order: the sample itself, recorded when it is drawn
    lemmas: tuple[str, ...] = ()
    #: Tactician-style online learning: the steps of the original proofs earlier in the same file join
    #: the generator's index as the file proceeds
    online_learning: bool = False
    #: automation modules Required at the top of a file where they do not depend on it
    automation: tuple[str, ...] = ()
    #: sampled lemmas per worker job (a job replays its file from the start up to its first lemma)
    lemmas_per_job: int = 8
    #: seconds allowed to replay a file up to a lemma (and for the scan of a whole file)
    replay_timeout: float = 900.0

    def validate(self) -> None:
        if self.split not in LIBRARY_SPLITS:
            raise ConfigError(f"--split for a library is one of {', '.join(LIBRARY_SPLITS)}, "
                              f"got {self.split!r}")
        if self.sample is not None and self.sample < 1:
            raise ConfigError(f"--sample must be >= 1, got {self.sample}")
        if self.lemmas_per_job < 1:
            raise ConfigError(f"lemmas_per_job must be >= 1, got {self.lemmas_per_job}")
        if self.replay_timeout <= 0:
            raise ConfigError("replay_timeout must be > 0 seconds")


@dataclass(frozen=True)
class HolePolicy:
    """How hard each hole is attacked. The per-tactic timeout is ``ProverConfig.tactic_timeout``."""

    #: seconds for all candidates on one hole together
    hole_time_limit: float = 60.0
    #: seconds for filling all sketches of one theorem (drafting excluded)
    theorem_time_limit: float = 600.0
    #: add CoqHammer's ``sauto``/``hauto`` to the Coq list (needs Debian ``libcoq-hammer``)
    use_hammer: bool = False
    #: Isabelle: run Sledgehammer when no heuristic closes a hole
    sledgehammer: bool = True
    sledgehammer_timeout: float = 30.0

    def validate(self) -> None:
        if self.hole_time_limit <= 0:
            raise ConfigError(f"--hole-time-limit must be > 0 seconds, got {self.hole_time_limit}")
        if self.theorem_time_limit <= 0:
            raise ConfigError(f"--time-budget must be > 0 seconds, got {self.theorem_time_limit}")


@dataclass(frozen=True)
class DrafterConfig:
    """Who writes the sketches. ``model`` settings are the llemma generator's (``GeneratorConfig``)."""

    name: str = "none"
    #: sketches per problem (pass@n)
    samples: int = 1
    replay_file: str | None = None
    #: few-shot prompt file (default: experiments/prompts/dsp_<backend>.txt)
    prompt_file: str | None = None
    model: GeneratorConfig = field(
        default_factory=lambda: GeneratorConfig(name="llemma", max_new_tokens=512))

    def validate(self) -> None:
        if self.name not in DRAFTERS:
            raise ConfigError(
                f"unknown --generator {self.name!r} for autoformalize; choose one of {', '.join(DRAFTERS)}"
            )
        if self.samples < 1:
            raise ConfigError(f"--samples must be >= 1, got {self.samples}")
        if reads_replay_file(self.name) and not self.replay_file:
            raise ConfigError('--generator replay needs --replay-file FILE (JSONL: {"theorem", "sketches"})')
        if self.model.temperature < 0:
            raise ConfigError("--temperature must be >= 0")
        if uses_model(self.name) and self.samples > 1 and self.model.temperature == 0:
            raise ConfigError("--samples > 1 needs --temperature > 0 (greedy decoding gives one sketch)")


@dataclass(frozen=True)
class AutoformalizeConfig:
    """Everything an ``autoformalize`` run needs, decided before anything starts (``workers/plan.py``'s
    ``plan_autoformalize``: ``--generator auto`` resolved, the backend's time policy as ``prove``'s);
    recorded whole in the run's ``config.json`` beside the provenance every run records."""

    split: str = "minif2f-test"
    backend: str = "coq"
    data_dir: str = ""
    out_dir: str = ""
    theorems: tuple[str, ...] = ()
    limit: int | None = None
    #: Ray workers that fill holes in parallel (0: in this process)
    workers: int = 0
    #: join this Ray cluster instead of starting one (needs ``workers >= 1``)
    ray_address: str | None = None
    #: how often a theorem whose worker died is tried again before it is recorded as a crash
    worker_retries: int = 1
    drafter: DrafterConfig = field(default_factory=DrafterConfig)
    holes: HolePolicy = field(default_factory=HolePolicy)
    prover: ProverConfig = field(default_factory=ProverConfig)
    #: a ``--dataset`` file (absolute path) the theorems come from instead of a miniF2F split
    dataset: str = ""

    @property
    def split_name(self) -> str:
        return SPLITS.get(self.split, self.split)

    @property
    def data_system(self) -> str:
        return DATA_SYSTEM[self.backend]

    def validate(self) -> None:
        validate_selection(self.split, self.backend, self.workers, self.limit)
        validate_dataset(self.split, self.dataset)
        self.drafter.validate()
        self.holes.validate()
        self.prover.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunConfig:
    """Everything a ``prove`` run needs, decided before anything starts (``cli/prove.py``'s
    ``build_config``: ``--generator auto`` already resolved, budgets, worker count and model servers
    chosen); recorded whole in the run's ``config.json`` and only read afterwards."""

    split: str = "minif2f-test"
    backend: str = "coq"
    data_dir: str = ""
    out_dir: str = ""
    theorems: tuple[str, ...] = ()
    limit: int | None = None
    workers: int = 1
    ray_address: str | None = None
    search: SearchConfig = field(default_factory=SearchConfig)
    prover: ProverConfig = field(default_factory=ProverConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    #: the model servers the workers' llemma generator uses (engine resolved), or None: no servers
    serving: ServerConfig | None = None
    #: GPUs each Ray worker reserves (1 for a language model on CUDA without model servers, else 0)
    gpus_per_worker: float = 0.0
    #: how often a theorem whose worker died is tried again before it is recorded as a crash
    worker_retries: int = 1
    #: a ``--dataset`` file (absolute path) the theorems come from instead of a miniF2F split
    dataset: str = ""
    #: ``prove --library``: the library's lemmas instead of a miniF2F split (None: miniF2F)
    library: LibraryConfig | None = None
    #: why ``--generator auto`` chose ``generator.name`` (``generators.registry.resolve_auto``); None
    #: when the generator was named
    generator_choice: str | None = None

    @property
    def split_name(self) -> str:
        return SPLITS.get(self.split, self.split)

    @property
    def data_system(self) -> str:
        return DATA_SYSTEM[self.backend]

    def validate(self) -> None:
        if self.library is None:
            validate_selection(self.split, self.backend, self.workers, self.limit)
            validate_dataset(self.split, self.dataset)
        else:
            self.library.validate()
            validate_selection("minif2f-test", self.backend, self.workers, self.limit)
        self.search.validate()
        self.prover.validate()
        self.generator.validate()
        if self.serving is not None:
            self.serving.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        try:
            search = SearchConfig(**data.pop("search", {}))
            prover = ProverConfig(**data.pop("prover", {}))
            gen = dict(data.pop("generator", {}))
            for key in ("bank_families", "extra_tactics", "bank_once"):
                if key in gen:
                    gen[key] = tuple(gen[key])
            if "bank_schedule" in gen:
                gen["bank_schedule"] = {k: (int(v[0]), int(v[1])) for k, v in gen["bank_schedule"].items()}
            generator = GeneratorConfig(**gen)
            serving = data.pop("serving", None)
            data["serving"] = ServerConfig(**serving) if serving is not None else None
            library = data.pop("library", None)
            if library is not None:
                library = dict(library)
                for key in ("files", "lemmas", "automation"):
                    library[key] = tuple(library.get(key, ()))
                data["library"] = LibraryConfig(**library)
            data["theorems"] = tuple(data.get("theorems", ()))
            return cls(search=search, prover=prover, generator=generator, **data)
        except TypeError as exc:
            raise ConfigError(f"invalid configuration: {exc}") from exc
