#!/usr/bin/env python3
"""Main-job benchmark on the 9-host demo lab (inventories/lab): cold bootstrap, idempotent
re-run (must change nothing) and a rolling update of the TX engines (1.0.0 -> 1.1.0),
with Ansible as configured in ansible.cfg (pipelining, forks 20, smart gathering with a fact
cache, empty at the start) and, as the variant `mitogen`, with mitogen's linear strategy
(mitogen from requirements-dev.txt; `make demo` uses it).

Also measured, to explain the figures: the floor of one module task on every host (50 no-op
`ping` tasks on the 9 hosts) and how many module and controller-only tasks the runs have.
The lab's hosts share the controller's cores, so every module run on a host competes with
Ansible itself.

Targets (issue #7): cold <= 120 s with the base cached, re-run <= 25 s, rolling update
<= 20 s per TX engine. Run as root: `.venv/bin/python benchmarks/bootstrap_lab.py
[--variant default|mitogen ...] [--profile]`. Exits non-zero when a run fails.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABCTL = str(ROOT / "lab" / "labctl")
LAYOUT = str(ROOT / "inventories" / "lab" / "layout.yml")
TARGETS = {"cold_s": 120.0, "rerun_s": 25.0, "rolling_s_per_tx": 20.0}
TX = ("tx-1", "tx-2", "tx-3")
FLOOR_TASKS = 50


def labctl(*args):
    return subprocess.run([LABCTL, *args], check=True, capture_output=True, text=True)


def variant_env(variant, facts_dir, profile):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"),
               PATH="%s:%s" % (ROOT / ".venv" / "bin", os.environ["PATH"]), ANSIBLE_NOCOLOR="1")
    if profile:
        env.update(ANSIBLE_CALLBACK_PLUGINS=str(ROOT / "benchmarks" / "callbacks"), ANSIBLE_CALLBACKS_ENABLED="task_timer",
                   TASK_TIMER_TOP="15")
    env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = facts_dir
    if variant == "mitogen":
        import ansible_mitogen  # pylint: disable=import-outside-toplevel
        env.update(ANSIBLE_HOST_KEY_CHECKING="False",  # mitogen's own ssh options (the lab's hosts share one key)
                   ANSIBLE_STRATEGY_PLUGINS=os.path.join(os.path.dirname(ansible_mitogen.__file__), "plugins", "strategy"),
                   ANSIBLE_STRATEGY="mitogen_linear")
    return env


def playbook(env, inventory, path, *args, log):
    started = time.monotonic()
    result = subprocess.run(["ansible-playbook", "-i", inventory, "-i", str(ROOT / "inventories" / "lab" / "cluster.yml"),
                             str(ROOT / path) if not os.path.isabs(path) else path, *args], env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - started
    log.write("=== %s %s (%.1f s, rc %d)\n%s\n%s\n" % (path, " ".join(args), took, result.returncode, result.stdout, result.stderr))
    if result.returncode != 0:
        sys.exit("%s failed (rc %d), see %s:\n%s" % (path, result.returncode, log.name, result.stdout[-3000:] + result.stderr[-2000:]))
    changed = sum(int(n) for n in re.findall(r"^\S+\s+: ok=\d+\s+changed=(\d+)", result.stdout, re.M))
    timers = result.stdout[result.stdout.find("== plays"):] if "== plays" in result.stdout else ""
    return took, changed, timers


def run_variant(variant, lab, profile, log):
    labctl("down", "--name", lab)
    started = time.monotonic()
    inventory = labctl("up", "--layout", LAYOUT, "--name", lab, "--subnet", "auto").stdout.strip().splitlines()[-1]
    lab_up = time.monotonic() - started
    state = json.loads(labctl("status", "--json", "--name", lab).stdout)[0]
    with tempfile.TemporaryDirectory(prefix="bench-facts-") as facts, tempfile.TemporaryDirectory(prefix="bench-lb-") as lb:
        env = variant_env(variant, facts, profile)
        prepare, _changed, _t = playbook(env, inventory, "lab/prepare.yml", log=log)
        pool = os.path.join(lb, "pool")
        subprocess.run([sys.executable, str(ROOT / "lab" / "lb_pool.py"), pool, "set", *TX], check=True)
        hooks = json.dumps({"lb_deregister_command": [str(ROOT / "lab" / "lb_pool.py"), pool, "remove", "{{ inventory_hostname }}"],
                            "lb_register_command": [str(ROOT / "lab" / "lb_pool.py"), pool, "add", "{{ inventory_hostname }}"]})
        cold, cold_changed, cold_t = playbook(env, inventory, "bootstrap-cluster.yml", log=log)
        rerun, rerun_changed, rerun_t = playbook(env, inventory, "bootstrap-cluster.yml", log=log)
        rolling, _changed, rolling_t = playbook(env, inventory, "playbooks/rolling_update.yml", "-e", hooks,
                                                "-e", "standin_version=1.1.0", log=log)
        floor_book = os.path.join(lb, "floor.yml")
        with open(floor_book, "w") as handle:
            handle.write("- hosts: all:!localhost\n  gather_facts: false\n  tasks:\n"
                         + "".join("    - ansible.builtin.ping:\n" for _i in range(FLOOR_TASKS)))
        floor, _changed, _t = playbook(env, inventory, floor_book, log=log)
    labctl("down", "--name", lab)
    figures = {"lab_up_s": lab_up, "prepare_s": prepare, "cold_s": cold, "cold_changed": cold_changed,
               "rerun_s": rerun, "rerun_changed": rerun_changed, "rolling_s": rolling, "rolling_s_per_tx": rolling / len(TX),
               "ping_task_s": floor / FLOOR_TASKS,
               "hosts": len(state["hosts"])}
    return figures, {"cold": cold_t, "rerun": rerun_t, "rolling": rolling_t}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", choices=["default", "mitogen"], help="default: both")
    parser.add_argument("--lab", default="sbbench")
    parser.add_argument("--profile", action="store_true", help="print the slowest plays and tasks of each run")
    args = parser.parse_args()
    labctl("base")
    results = {}
    log_path = ROOT / ".cache" / "bench" / "bootstrap_lab.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        for variant in args.variant or ["default", "mitogen"]:
            figures, timers = run_variant(variant, args.lab, args.profile, log)
            results[variant] = figures
            print("%s: %s" % (variant, json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in figures.items()})), flush=True)
            if args.profile:
                for run, text in timers.items():
                    print("--- %s / %s\n%s" % (variant, run, text))
    print("\n%-10s %8s %8s %10s %12s %10s   (targets: cold <= %.0f s, re-run <= %.0f s and 0 changed, <= %.0f s per TX)" % (
        "variant", "cold s", "rerun s", "changed", "rolling s/TX", "ping s", TARGETS["cold_s"], TARGETS["rerun_s"], TARGETS["rolling_s_per_tx"]))
    for variant, f in results.items():
        print("%-10s %8.1f %8.1f %10d %12.1f %10.2f" % (variant, f["cold_s"], f["rerun_s"], f["rerun_changed"], f["rolling_s_per_tx"],
                                                      f["ping_task_s"]))
    print("log: %s" % log_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
