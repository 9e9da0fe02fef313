"""The reporter's costs against a real host (started here in a temporary data
directory; the binary is $MONITOR_BIN, else target/debug/monitor of this repository).

    python3 bench.py [--calls 1000000] [--nodes 20000]

Prints:
- the cost of one advance() call in a tight loop, with the sender running;
- advance() calls delivered per second, from the loop's start until flush() returns;
- updates delivered per second when none can be merged (start, advance, finish
  of many nodes), from the first call until flush() returns.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import monitor  # noqa: E402
from tests.host import Host  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000, help="advance() calls in the tight loop")
    parser.add_argument("--nodes", type=int, default=20_000, help="nodes started, advanced and finished")
    args = parser.parse_args()

    host = Host().start()
    try:
        os.environ.pop("MONITOR_URL", None)
        os.environ.pop("MONITOR_TOKEN", None)
        os.environ["MONITOR_DATA_DIR"] = str(host.data)
        warm = monitor.phase("bench-warm/a")
        warm.finish()
        assert monitor.flush(30), "the host did not answer"

        node = monitor.phase("bench-advance/loop")
        advance = node.advance
        began = time.perf_counter_ns()
        for _ in range(args.calls):
            advance()
        looped = time.perf_counter_ns()
        node.finish()
        assert monitor.flush(60), "not delivered"
        delivered = time.perf_counter_ns()
        done = host.tree("bench-advance")["bench-advance/loop"]["done"]
        assert done == args.calls, f"{done} of {args.calls} advances arrived"
        requests = sum(1 for e in host.events("bench-advance") if e["update"]["op"] == "advance")

        print(f"advance(): {(looped - began) / args.calls:.0f} ns per call ({args.calls:,} calls, sender running)")
        print(
            f"advance() end to end: {args.calls / ((delivered - began) / 1e9):,.0f} calls delivered per second "
            f"({(delivered - looped) / 1e6:.1f} ms from the loop's end to flush(); {requests} advance updates stored)"
        )

        began = time.perf_counter_ns()
        for i in range(args.nodes):
            n = monitor.Node(f"bench-nodes/n{i}")
            n.start(total=1)
            n.advance()
            n.finish()
        queued = time.perf_counter_ns()
        assert monitor.flush(600), "not delivered"
        delivered = time.perf_counter_ns()
        updates = 3 * args.nodes
        print(
            f"unmergeable updates end to end: {updates / ((delivered - began) / 1e9):,.0f} updates delivered per second "
            f"({updates:,} updates: start, advance, finish of {args.nodes:,} nodes; "
            f"{(queued - began) / updates:.0f} ns per call to queue them)"
        )
    finally:
        host.close()


if __name__ == "__main__":
    main()
