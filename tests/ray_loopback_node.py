"""``ray start`` for the nodes of a loopback-only test cluster (run as a script, like ``ray``).

Two test-only adjustments of Ray's CLI, nothing else:

* Ray rewrites a loopback ``--address``/``--node-ip-address`` of a joining node to the machine's
  routable address (``services.resolve_ip_for_localhost``), so a second node can only join a
  127.0.0.1 head if loopback addresses are kept as given. On a real cluster nodes have real addresses
  and plain ``ray start --address=HEAD:PORT`` is used (README, "Running on a cluster").
* Ray gives a new node 30 s (hard-coded) to appear in the GCS; on a loaded CI machine that passes, so
  the lookup is retried for up to ``REGISTER_S`` seconds.
"""

import sys
import time

import ray._private.services as services

REGISTER_S = 180.0

services.resolve_ip_for_localhost = lambda host: host
_get_node = services.get_node


def _get_node_patiently(*args, **kwargs):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + REGISTER_S
    while True:
        try:
            return _get_node(*args, **kwargs)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


services.get_node = _get_node_patiently

from ray.scripts.scripts import main  # noqa: E402

if __name__ == "__main__":
    sys.argv = ["ray", *sys.argv[1:]]
    main()
