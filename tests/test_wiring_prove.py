"""``prove`` wiring: model servers shared by Ray workers, in-process llemma, fast offline failure,
Lean flags and errors, sandbox and tactic-timeout recording (issues 3, 6, 7 through the CLI)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import ProcessWatcher, cli_command, cli_env, cmdline, default_sigint, descendants, run_cli

from llemma_prover.core.config import GeneratorConfig, RunConfig
from llemma_prover.core.errors import ConfigError, GeneratorUnavailable, ProverUnavailable, UserError
from llemma_prover.workers.plan import Machine

#: the machine the plans of these tests are made for (no GPU, as here): plans do not depend on the host
CPU = Machine(cpus=os.cpu_count() or 1)

#: two easy miniF2F-test problems
NAMES = ["mathd_algebra_176", "mathd_algebra_142"]
#: tiny budgets: the point is the wiring, not the proof rate
TINY = ("--candidates", "2", "--max-expansions", "2", "--time-budget", "30")


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from llemma_prover.lm.synthetic import TINY_LLAMA_SHAPE, save_random_llama

    torch.set_num_threads(1)
    return save_random_llama(tmp_path_factory.mktemp("tiny-llama"), TINY_LLAMA_SHAPE, seed=0)


def _records(out: Path) -> dict[str, dict]:
    lines = (out / "results.jsonl").read_text().splitlines()
    return {r["theorem"]: r for r in (json.loads(x) for x in lines if x.strip())}


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    errors = [x for x in proc.stderr.splitlines() if "error:" in x]
    assert len(errors) == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == errors[0], proc.stderr  # the message ends the output
    assert "Traceback" not in proc.stderr
    return errors[0]


# ----------------------------------------------------------------------------------------------
# model servers
# ----------------------------------------------------------------------------------------------


@pytest.mark.coq
@pytest.mark.ray
@pytest.mark.model
@pytest.mark.slow
def test_two_workers_share_one_model_server_end_to_end(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "run"
    cmd = cli_command("--generator", "llemma", "--model", str(tiny_model_dir), "--model-server", "on",
                      "--workers", "2", "--theorems", ",".join(NAMES), "--out", str(out), *TINY)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    watcher = ProcessWatcher(proc.pid)
    servers: set[int] = set()
    stop = threading.Event()

    def spot_servers() -> None:  # actor processes take their class name as title once created
        while not stop.is_set():
            servers.update(p for p in descendants(proc.pid) if "ModelServer" in cmdline(p))
            stop.wait(0.2)

    spotter = threading.Thread(target=spot_servers, daemon=True)
    spotter.start()
    try:
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        stop.set()
        spotter.join(5)
        watcher.stop()
    assert proc.returncode == 0, stderr[-3000:]
    assert "on 1 model server(s)" in stderr, stderr  # the start banner (on stderr) says what runs
    cfg = json.loads((out / "config.json").read_text())
    ms = cfg["generator"]["model_server"]
    assert ms is not None and ms["model_server"] is True and ms["servers"] == 1, ms
    assert ms["engine"] == "hf" and ms["device"] == "cpu", ms
    assert cfg["generator"]["name"] == "llemma" and cfg["generator"]["describe"] == ms
    assert cfg["workers"] == 2
    assert len(servers) == 1, f"expected exactly one model-server process, saw {servers}"
    recs = _records(out)
    assert sorted(recs) == sorted(NAMES)
    for r in recs.values():
        assert r["generator"] == "llemma" and r["status"] in ("proved", "failed"), r
        assert r["expansions"] >= 1 and r["time"]["model"] > 0, r  # the server answered
        assert (out / r["trace"]).is_file()
    # nothing left behind: servers, workers, raylet, provers
    assert watcher.alive("ModelServer", timeout=30) == []
    assert watcher.alive("ray::", timeout=30) == []
    assert watcher.alive("raylet", timeout=30) == []
    assert watcher.alive("coqidetop", timeout=15) == []
    assert watcher.alive("coqtop", timeout=0) == []


@pytest.mark.coq
@pytest.mark.model
@pytest.mark.slow
def test_llemma_in_process_without_server(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli("--generator", "llemma", "--model", str(tiny_model_dir), "--model-server", "off",
                   "--workers", "0", "--theorems", NAMES[0], "--out", str(out), *TINY, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["generator"]["model_server"] is None
    assert cfg["generator"]["describe"]["name"] == "llemma"
    assert "model_server" not in cfg["generator"]["describe"]
    rec = _records(out)[NAMES[0]]
    assert rec["generator"] == "llemma" and rec["time"]["model"] > 0, rec


@pytest.mark.coq
def test_worker_uses_a_ready_made_generator(tmp_path: Path, minif2f_dir: Path) -> None:
    """A Worker given a generator never builds one from its config (here: a model that does not exist)."""
    from llemma_prover.data.minif2f import load_split, select
    from llemma_prover.generators.replay import ReplayGenerator
    from llemma_prover.workers.job import ProveJob, ProveSpec
    from llemma_prover.workers.pool import Worker

    replay = tmp_path / "tactics.txt"
    replay.write_text("ring.\n")
    theorem = select(load_split(minif2f_dir, "coq", "test").theorems, ("mathd_algebra_176",), None)[0]
    gen_cfg = GeneratorConfig(name="llemma", model=str(tmp_path / "no-such-model"))
    cfg = RunConfig(workers=1, generator=gen_cfg)
    w = Worker(ProveSpec("coq", cfg.prover, gen_cfg, ReplayGenerator(str(replay))))
    try:
        w.start()
        assert w.context.generator.describe()["name"] == "replay"
        result = w.run(ProveJob(theorem, cfg))
    finally:
        w.close()
    assert result.record.status.value == "proved", result.record
    assert list(result.record.proof) == ["ring."]


@pytest.mark.ray
@pytest.mark.model
def test_auto_with_a_gpu_falls_back_to_bank_when_the_server_cannot_start(tmp_path: Path) -> None:
    """--generator auto, --model-server auto, a GPU (simulated: there is none here): the server start
    fails for real (no such model) and the run goes on with bank, saying why; Ray is shut down."""
    import ray

    from llemma_prover.cli import prove
    from llemma_prover.workers.plan import Machine

    args = _args("--generator", "auto", "--model", str(tmp_path / "missing-model"), "--workers", "1")
    machine = Machine(gpus=1, cpus=2)
    planned = prove.build_config(args, machine=machine)
    assert planned.generator.name == "llemma" and planned.serving is not None
    cfg, resolved, note = prove.start_planned(args, planned, machine)
    try:
        assert cfg.generator.name == "bank" and cfg.serving is None and resolved.servers is None
        bank = prove.build_config(_args("--generator", "bank", "--workers", "1"), machine=CPU)
        assert cfg.search == bank.search
        assert "model server could not start" in note and "using bank" in note
        assert "no such file or directory" in note and "ray::" not in note, note
        assert not ray.is_initialized()
    finally:
        resolved.close()


@pytest.mark.ray
def test_server_start_errors_are_one_line(tmp_path: Path) -> None:
    """An explicit llemma whose server cannot load: the server's own message, not Ray's remote traceback."""
    proc = run_cli("--generator", "llemma", "--model", str(tmp_path / "missing"), "--model-server", "on",
                   "--workers", "1", "--theorems", NAMES[0], "--out", str(tmp_path / "run"), timeout=180)
    line = _one_line_error(proc)
    assert "no such file or directory" in line and "ray::" not in line and "File " not in line, line
    # an engine that cannot run is refused before Ray starts
    t0 = time.monotonic()
    proc = run_cli("--generator", "llemma", "--model", str(tmp_path), "--model-server", "on", "--engine",
                   "vllm", "--workers", "1", "--theorems", NAMES[0], "--out", str(tmp_path / "run2"),
                   timeout=180)
    line = _one_line_error(proc)
    assert "--engine vllm needs" in line and "Token authentication" not in proc.stderr, proc.stderr
    assert time.monotonic() - t0 < 15


def test_model_server_flag_errors() -> None:
    from llemma_prover.core.config import ServerConfig
    from llemma_prover.workers.plan import Machine, plan_generator

    with pytest.raises(ConfigError, match="needs --generator llemma"):
        plan_generator("bank", "on", ServerConfig(), 1, Machine())
    with pytest.raises(ConfigError, match="needs --workers >= 1"):
        plan_generator("llemma", "on", ServerConfig(), 0, Machine())
    proc = run_cli("--engine", "vllm", "--model-server", "off", "--limit", "1", timeout=60)
    assert "--engine" in _one_line_error(proc)
    proc = run_cli("--lean-repl", "/tmp", "--backend", "coq", "--limit", "1", timeout=60)
    assert "--lean-repl is for --backend lean4" in _one_line_error(proc)


def test_the_plan_is_decided_from_flags_and_machine_alone() -> None:
    """``plan_generator`` is pure: auto, model servers, engine, GPUs per worker and the worker count
    follow from the flags and what the machine has, before anything starts."""
    from llemma_prover.core.config import ServerConfig
    from llemma_prover.workers.plan import Machine, plan_generator

    cpu = Machine(gpus=0, vllm=False, cpus=6)
    gpu2 = Machine(gpus=2, vllm=False, cpus=6)
    plan = plan_generator("auto", "auto", ServerConfig(), None, cpu)
    assert (plan.name, plan.serving, plan.gpus_per_worker, plan.workers) == ("bank", None, 0.0, 6)
    assert plan.why == "auto: no GPU found"
    plan = plan_generator("auto", "off", ServerConfig(), None, gpu2)
    assert (plan.name, plan.serving, plan.gpus_per_worker, plan.workers) == ("llemma", None, 1.0, 2)
    plan = plan_generator("auto", "auto", ServerConfig(), None, gpu2)
    assert plan.name == "llemma" and plan.serving == ServerConfig(engine="hf") and plan.workers == 6
    assert plan_generator("auto", "auto", ServerConfig(), 0, gpu2).serving is None  # in-process: no servers
    # an engine that cannot run: an error when llemma was asked for, bank under auto
    with pytest.raises(GeneratorUnavailable, match="--engine vllm needs"):
        plan_generator("llemma", "on", ServerConfig(engine="vllm"), 1, gpu2)
    plan = plan_generator("auto", "auto", ServerConfig(engine="vllm"), 1, gpu2)
    assert plan.name == "bank" and plan.why is not None and "--engine vllm needs" in plan.why
    failed = Machine(gpus=2, cpus=6, llemma_failed="llemma could not load (x)")
    assert plan_generator("auto", "off", ServerConfig(), None, failed).name == "bank"


def test_a_mixture_with_a_model_gets_model_servers_and_gpus() -> None:
    """Issue 20: ``llemma+bank`` on a machine with 4 GPUs started no model server and gave workers no
    GPU. Any mixture that contains a model is planned like the model alone; one without is not."""
    from llemma_prover.core.config import BANK_SEARCH, LLEMMA_SEARCH, ServerConfig, effective_search
    from llemma_prover.workers.plan import Machine, plan_generator

    gpu4 = Machine(gpus=4, vllm=False, cpus=8)
    plan = plan_generator("llemma+bank", "auto", ServerConfig(), None, gpu4)
    assert plan.name == "llemma+bank" and plan.serving == ServerConfig(engine="hf") and plan.why is None
    plan = plan_generator("bank+llemma", "off", ServerConfig(), None, gpu4)
    assert (plan.serving, plan.gpus_per_worker, plan.workers) == (None, 1.0, 4)
    plan = plan_generator("bank+retrieval", "auto", ServerConfig(), None, gpu4)
    assert (plan.serving, plan.gpus_per_worker, plan.workers) == (None, 0.0, 8)
    with pytest.raises(ConfigError, match="needs --generator llemma"):
        plan_generator("bank+retrieval", "on", ServerConfig(), 1, gpu4)
    assert effective_search("llemma+bank", None, None, None) == LLEMMA_SEARCH
    assert effective_search("bank+retrieval", None, None, None) == BANK_SEARCH


def test_default_model_offline_fails_fast_in_one_line(tmp_path: Path) -> None:
    """The default model id, not cached, Hub unreachable (an endpoint nothing listens on): one line,
    exit 2, no download retries."""
    env = cli_env(HF_HOME=str(tmp_path / "hf-home"), HF_ENDPOINT="http://127.0.0.1:9")
    env.pop("HF_HUB_OFFLINE", None)
    t0 = time.monotonic()
    proc = run_cli("--generator", "llemma", "--workers", "0", "--theorems", NAMES[0],
                   "--out", str(tmp_path / "run"), env=env, timeout=120)
    elapsed = time.monotonic() - t0
    line = _one_line_error(proc)
    assert "EleutherAI/llemma_7b" in line and "cannot be reached" in line, line
    assert "--generator bank" in line
    assert elapsed < 15, f"took {elapsed:.1f} s"


# ----------------------------------------------------------------------------------------------
# Lean, sandbox, tactic timeout
# ----------------------------------------------------------------------------------------------


def _args(*argv: str):  # type: ignore[no-untyped-def]
    import argparse

    from llemma_prover.cli import prove

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    prove.add_parser(sub)
    return parser.parse_args(["prove", *argv])


def test_flags_map_onto_the_prover_config(tmp_path: Path) -> None:
    from llemma_prover.cli.prove import build_config

    assert build_config(_args(), machine=CPU).prover.tactic_timeout == 5.0
    assert build_config(_args("--backend", "lean4"), machine=CPU).prover.tactic_timeout == 30.0
    assert build_config(_args("--backend", "leandojo"), machine=CPU).prover.tactic_timeout == 30.0
    lean7 = build_config(_args("--backend", "lean4", "--tactic-timeout", "7"), machine=CPU)
    assert lean7.prover.tactic_timeout == 7.0
    assert build_config(_args("--backend", "isabelle"), machine=CPU).prover.tactic_timeout == 5.0
    cfg = build_config(_args("--backend", "lean4", "--lean-repl", str(tmp_path)), machine=CPU)
    assert cfg.prover.executable == str(tmp_path.resolve())
    repl = build_config(_args("--backend", "lean4", "--lean-repl", "repl"), machine=CPU)
    assert repl.prover.executable == "repl"
    assert build_config(_args(), machine=CPU).prover.sandbox == "auto"
    assert build_config(_args("--sandbox", "rlimits"), machine=CPU).prover.sandbox == "rlimits"


def test_prover_errors_survive_pickling() -> None:
    """Ray sends a worker's exception to the driver pickled: a missing prover stays a UserError."""
    exc = pickle.loads(pickle.dumps(ProverUnavailable("no REPL; build lean_project", backend="lean4")))
    assert isinstance(exc, ProverUnavailable) and isinstance(exc, UserError)
    assert str(exc) == "lean4: no REPL; build lean_project" and exc.backend == "lean4"


@pytest.mark.parametrize("workers", ["0", "1"])
def test_lean4_without_lean_is_one_line(tmp_path: Path, workers: str) -> None:
    env = cli_env(PATH=os.path.dirname(cli_command()[0]) + ":/usr/bin:/bin")  # no lake, no repl
    proc = run_cli("--backend", "lean4", "--generator", "bank", "--workers", workers, "--theorems",
                   "mathd_algebra_176", "--out", str(tmp_path / "run"), env=env, timeout=180)
    line = _one_line_error(proc)
    assert "lean4:" in line and "lean_project" in line and "lake build" in line, line
    assert "--lean-repl" in line


def test_sandbox_recorded_in_config_json(tmp_path: Path) -> None:
    from llemma_prover.backends.sandbox import sandbox_for
    from llemma_prover.core.config import ProverConfig
    from llemma_prover.workers.driver import ResolvedGenerator, run_metadata

    cfg = RunConfig(workers=0, prover=ProverConfig(sandbox="rlimits"))
    meta = run_metadata(cfg, ResolvedGenerator("bank", "bank"), [], "h", ["x"])
    assert meta["sandbox"] == sandbox_for(cfg.prover).describe()
    assert meta["sandbox"]["network_isolation"] == "none"  # rlimits: no network isolation asked for
    assert meta["sandbox"]["rlimits"]["address_space_mb"] == cfg.prover.memory_limit_mb
    assert meta["generator"]["model_server"] is None
    settings = dict(meta["prover_settings"])
    settings.pop("time_policy")
    assert settings == meta["prover"]  # coq runs exactly the recorded ProverConfig


def test_one_time_policy_per_backend_for_prove_and_autoformalize() -> None:
    """``prove`` and ``autoformalize`` take the same tactic timeout for the same backend (the backend's
    ``default_config``), and the bank's time budget scales with it (12 s tuned on Coq's 5 s)."""
    from llemma_prover.backends.base import backend_class
    from llemma_prover.cli import autoformalize_cmd, prove
    from llemma_prover.cli.main import build_parser

    parser = build_parser()
    for backend in ("coq", "lean4", "isabelle"):
        policy = backend_class(backend).setup.default_config()
        argv = ["prove", "--backend", backend, "--generator", "bank", "--workers", "0"]
        pargs = parser.parse_args(argv)
        pargs._argv = argv
        p = prove.build_config(pargs, machine=CPU)
        fargs = parser.parse_args(["autoformalize", "--backend", backend, "--generator", "none"])
        f, why = autoformalize_cmd.build_config(fargs, machine=CPU)
        assert f.drafter.name == "none" and why == "requested"
        assert p.prover.tactic_timeout == f.prover.tactic_timeout == policy.tactic_timeout, backend
        assert p.search.time_budget == 12.0 * max(1.0, policy.tactic_timeout / 5.0), backend
    # config.json records Coq's derived deadlines beside its ProverConfig, and what the budget covers
    from llemma_prover.workers.driver import ResolvedGenerator, run_metadata

    meta = run_metadata(RunConfig(workers=0), ResolvedGenerator("bank", "bank"), [], "h", ["x"])
    policy = meta["prover_settings"]["time_policy"]
    assert policy["tactic_deadline"] == policy["tactic_coq_timeout"] + policy["grace"] == 5 + 2.0
    assert policy["check"] == meta["prover"]["check_timeout"] and policy["qed"] <= policy["check"]
    assert "not the final re-check" in meta["time_budget_covers"]


def test_lean4_settings_recorded_as_they_run() -> None:
    """Lean 4 takes every limit of its ProverConfig as it is (no hidden minimum), and the CLI starts from
    the backend's own defaults (a Mathlib REPL needs more memory and a longer start than coqtop): the
    recorded "prover" is the policy that runs, and "prover_settings" agrees with it."""
    from llemma_prover.backends.lean4.backend import Lean4Backend, Lean4Settings
    from llemma_prover.backends.lean4.pool import PoolPolicy
    from llemma_prover.backends.lean4.repl_process import ProcessPolicy
    from llemma_prover.cli.prove import build_config
    from llemma_prover.core.config import ProverConfig
    from llemma_prover.workers.driver import ResolvedGenerator, run_metadata

    cfg = RunConfig(backend="lean4", workers=0, prover=ProverConfig(tactic_timeout=30.0, start_timeout=10.0))
    meta = run_metadata(cfg, ResolvedGenerator("bank", "bank"), [], "h", ["x"])
    ran = Lean4Settings.from_prover_config(cfg.prover)
    assert meta["prover_settings"]["pool"]["start_timeout"] == ran.pool.start_timeout == 10.0
    assert meta["prover_settings"]["tactic_timeout"] == 30.0
    built = build_config(_args("--backend", "lean4", "--generator", "bank"), machine=CPU).prover
    assert built == Lean4Backend.setup.default_config()
    assert built.start_timeout == PoolPolicy().start_timeout
    assert built.memory_limit_mb == ProcessPolicy().rss_kill_mb
    settings = Lean4Settings.from_prover_config(built)
    assert (settings.pool.start_timeout, settings.process.rss_kill_mb, settings.pool.recycle_rss_mb) == (
        built.start_timeout, built.memory_limit_mb, built.recycle_rss_mb)
    # coq: the plain defaults
    assert build_config(_args("--generator", "bank"), machine=CPU).prover == ProverConfig()


@pytest.mark.coq
@pytest.mark.ray
@pytest.mark.model
@pytest.mark.slow
def test_ctrl_c_stops_the_model_server_and_workers(tmp_path: Path, tiny_model_dir: Path) -> None:
    import signal

    out = tmp_path / "run"
    # enough work that the run is still searching when the signal comes (two theorems can finish within
    # the wait; a SIGINT that lands while Python finalises after a finished run kills it with -2)
    names = [*NAMES, "mathd_algebra_24", "mathd_algebra_329", "mathd_numbertheory_3", "mathd_algebra_478",
             "mathd_numbertheory_254", "mathd_algebra_296", "amc12a_2002_p6", "amc12a_2019_p12"]
    cmd = cli_command("--generator", "llemma", "--model", str(tiny_model_dir), "--model-server", "on",
                      "--workers", "1", "--theorems", ",".join(names), "--out", str(out),
                      "--candidates", "2", "--max-expansions", "100", "--time-budget", "120")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
                            preexec_fn=default_sigint)
    watcher = ProcessWatcher(proc.pid)
    try:
        deadline = time.monotonic() + 300
        searching = False
        while time.monotonic() < deadline and proc.poll() is None and not searching:
            kids = descendants(proc.pid)
            searching = (any("ModelServer" in cmdline(p) for p in kids)
                         and any("coqidetop" in cmdline(p) or "coqtop" in cmdline(p) for p in kids))
            time.sleep(0.2)
        assert searching and proc.poll() is None, "never saw the server and a prover running"
        time.sleep(1.0)  # mid-search
        assert proc.poll() is None, "the run finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        watcher.stop()
    assert proc.returncode == 130, stderr[-6000:]
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert watcher.alive("ModelServer", timeout=30) == []
    assert watcher.alive("ray::", timeout=30) == []
    assert watcher.alive("raylet", timeout=30) == []
    assert watcher.alive("coqidetop", timeout=15) == []
    assert watcher.alive("coqtop", timeout=0) == []


def test_search_order_keeps_headers_together_longest_statement_first() -> None:
    """``search_order``: one header's theorems back to back; groups by their longest statement, then
    longest first within a group, file order among equal lengths."""
    from llemma_prover.core.types import Theorem
    from llemma_prover.workers.driver import search_order

    def thm(name: str, header: str, statement: str) -> Theorem:
        return Theorem(name=name, split="valid", system="coq", header=header, statement=statement)

    theorems = [
        thm("a_short", "A", "Theorem a_short : True."),
        thm("b_long", "B", "Theorem b_long : True /\\ True /\\ True."),
        thm("a_long", "A", "Theorem a_long : True /\\ True."),
        thm("a_same", "A", "Theorem a_same : True /\\ True."),
        thm("c_one", "C", "Theorem c : True."),
    ]
    order = [t.name for t in search_order(theorems)]
    assert order == ["b_long", "a_long", "a_same", "a_short", "c_one"]
    assert sorted(order) == sorted(t.name for t in theorems)
