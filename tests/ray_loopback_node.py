"""``ray start`` for the nodes of a loopback-only test cluster (run as a script, like ``ray``).

One test-only adjustment of Ray's CLI: Ray rewrites a loopback ``--address``/``--node-ip-address`` of
a joining node to the machine's routable address (``services.resolve_ip_for_localhost``), so a second
node can only join a 127.0.0.1 head if loopback addresses are kept as given. On a real cluster nodes
have real addresses and plain ``ray start --address=HEAD:PORT`` is used (``docs/cluster.md``).
"""

import sys

import ray._private.services as services

services.resolve_ip_for_localhost = lambda host: host

from ray.scripts.scripts import main  # noqa: E402

if __name__ == "__main__":
    sys.argv = ["ray", *sys.argv[1:]]
    main()
