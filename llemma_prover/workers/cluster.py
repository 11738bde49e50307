"""Starting, joining and leaving Ray: loopback-only when we start it, token authentication when we join.

* ``ray_init(None, n)`` starts a private single-machine Ray bound to 127.0.0.1 only.
* ``ray_init(address, n)`` joins a cluster someone started with ``ray start --head``. Ray 2.60 turns
  token authentication on for such a cluster whenever a token exists (``ray get-auth-token
  --generate`` writes ``~/.ray/auth_token``), but a driver given an explicit address does not turn it
  on by itself and fails with ``InvalidAuthToken ... RAY_AUTH_MODE is currently 'disabled'``. We do
  what Ray does for ``address="auto"``: when ``RAY_AUTH_MODE`` is unset and a token is available
  (``$RAY_AUTH_TOKEN``, the file ``$RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token``), token mode is
  used. A token sent to a cluster without authentication is ignored, so this never breaks a join.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from typing import Any

from ..core.errors import ConfigError

#: seconds to wait for a TCP connection to ``--ray-address`` before ``ray.init`` (which retries for minutes)
RAY_ADDRESS_PROBE_S = 5.0
#: object store of a Ray we start ourselves (jobs pass small records, not tensors)
LOCAL_OBJECT_STORE_BYTES = 200 * 1024 * 1024
AUTH_MODE_ENV = "RAY_AUTH_MODE"
#: Ray's setting (its spelling) for the niceness of the worker processes it starts
WORKER_NICENESS_ENV = "RAY_worker_niceness"
#: Ray gives its node 30 s to come up (hard-coded); on a loaded machine the start is tried once more
LOCAL_START_ATTEMPTS = 2

log = logging.getLogger(__name__)


def ray_env() -> None:
    """Environment for a loopback-only Ray without usage stats; must be set before ``import ray``.

    The workers of a Ray we start run at the driver's priority (``RAY_worker_niceness=0`` unless the
    user set it): Ray's default of nice 15 would let the checker's coqc/coqchk, which run from the
    driver, take the CPU from the search, whose tactic timeouts are wall-clock (docs/check.md)."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault(WORKER_NICENESS_ENV, "0")


def probe_address(address: str) -> None:
    """A ``host:port`` address where nothing listens is a one-line ``ConfigError`` at once: ``ray.init``
    itself would retry the GCS connection for minutes. Other forms (``auto``, ``ray://``) go to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or "/" in address or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=RAY_ADDRESS_PROBE_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot join the Ray cluster at {address}: nothing answers there ({reason}); "
                          "start it with `ray start --head` or leave out --ray-address") from None


def _is_loopback(address: str) -> bool:
    host = address.rpartition(":")[0].strip("[]") if ":" in address else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def use_token_if_available() -> bool:
    """Token mode for joining a cluster when ``RAY_AUTH_MODE`` is unset and a token exists (see the
    module docstring). Returns whether token mode is on. Must run before ``ray.init``."""
    mode = os.environ.get(AUTH_MODE_ENV)
    if mode is not None:
        return mode.lower() == "token"
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:  # a Ray without token authentication
        return False
    if not AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True):
        return False
    os.environ[AUTH_MODE_ENV] = "token"
    Config.initialize("")  # Ray caches its config: make this process see token mode now
    return True


def ray_init(address: str | None, num_cpus: int) -> bool:
    """Start a loopback-only local Ray (or join ``address``). Returns True if this call started or
    joined Ray (so the caller shuts it down), False if Ray was already initialized."""
    ray_env()
    import ray
    from ray._private import ray_constants

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address:
        probe_address(address)
        use_token_if_available()
        if _is_loopback(address):
            # Ray rewrites a loopback bootstrap address to the machine's routable one unless cluster mode
            # is off (the constant is read when ray is first imported, possibly before ray_env() ran):
            # a cluster on 127.0.0.1 is joined on 127.0.0.1, never through another interface
            ray_constants.ENABLE_RAY_CLUSTER = False
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"cannot join the Ray cluster at {address}: {' '.join(str(exc).split())[:300]}"
                              ) from exc
        return True
    # Ray binds every server to 127.0.0.1 only when the node address is loopback; the constant is read
    # when ray is first imported, so make sure it holds even if someone imported ray before us.
    if ray_constants.ENABLE_RAY_CLUSTER:
        ray_constants.ENABLE_RAY_CLUSTER = False
    # address="local": always a new cluster of our own, never one found through $RAY_ADDRESS or
    # /tmp/ray/ray_current_cluster (someone else's `ray start` on this machine)
    for attempt in range(1, LOCAL_START_ATTEMPTS + 1):
        try:
            ray.init(address="local", num_cpus=num_cpus, _node_ip_address="127.0.0.1",
                     object_store_memory=LOCAL_OBJECT_STORE_BYTES, **kwargs)
            return True
        except Exception as exc:  # Ray raises a bare Exception when its node does not come up in time
            if "timed out during startup" not in str(exc) or attempt == LOCAL_START_ATTEMPTS:
                raise
            log.warning("Ray did not start in time (a loaded machine?); trying once more")
            ray.shutdown()
    return True


def ray_shutdown(started: bool) -> None:
    """``ray.shutdown()`` if ``started`` (what ``ray_init`` returned) and Ray still runs."""
    if started:
        import ray

        if ray.is_initialized():
            ray.shutdown()
