#!/usr/bin/env python3
# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The lab's stand-in load balancer pool: a file with one registered host per line.

  lb_pool.py FILE add HOST      register HOST (the rolling update's lb_register_command)
  lb_pool.py FILE remove HOST   deregister HOST (lb_deregister_command)
  lb_pool.py FILE set HOST...   replace the pool

lab/prober.py sends its probes only to the hosts in the pool, as a load balancer would.
"""
import fcntl
import os
import sys


def main(argv):
    path, action, hosts = argv[0], argv[1], argv[2:]
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(path) as handle:
                pool = [line.strip() for line in handle if line.strip()]
        except FileNotFoundError:
            pool = []
        if action == "add":
            pool += [h for h in hosts if h not in pool]
        elif action == "remove":
            pool = [h for h in pool if h not in hosts]
        elif action == "set":
            pool = list(hosts)
        else:
            sys.exit("usage: lb_pool.py FILE add|remove|set HOST...")
        with open(path + ".tmp", "w") as handle:
            handle.write("".join(h + "\n" for h in pool))
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main(sys.argv[1:])
