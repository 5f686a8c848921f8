#!/usr/bin/env python3
# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Probe the /health of every engine in the lab's load balancer pool until SIGTERM, then
print a JSON summary: probes and failures per host, and the failures themselves.

  ip netns exec LAB prober.py --pool FILE --target tx-1=10.213.0.17:9090 [--target ...]

Runs inside the lab's network namespace (the engines' addresses are reachable only there).
Each round reads the pool (lab/lb_pool.py) and probes only the hosts registered in it.
"""
import argparse
import json
import signal
import sys
import time
import urllib.request


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pool", required=True)
    parser.add_argument("--target", action="append", default=[], help="HOST=ADDRESS:PORT")
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()
    targets = dict(t.split("=", 1) for t in args.target)
    stats = {h: {"probes": 0, "failures": 0} for h in targets}
    failures, running = [], [True]
    signal.signal(signal.SIGTERM, lambda *_args: running.__setitem__(0, False))
    print("probing", flush=True)
    while running[0]:
        try:
            with open(args.pool) as handle:
                pool = [line.strip() for line in handle if line.strip() in targets]
        except FileNotFoundError:
            pool = []
        for host in pool:
            stats[host]["probes"] += 1
            try:
                with urllib.request.urlopen("http://%s/health" % targets[host], timeout=2) as resp:
                    if json.load(resp).get("status") != "ok":
                        raise ValueError("status not ok")
            except Exception as exc:  # every kind of failure counts
                stats[host]["failures"] += 1
                failures.append({"host": host, "time": time.time(), "error": str(exc)})
        time.sleep(args.interval)
    json.dump({"hosts": stats, "failures": failures[:50]}, sys.stdout)


if __name__ == "__main__":
    main()
