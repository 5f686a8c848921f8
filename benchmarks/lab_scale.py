#!/usr/bin/env python3
"""Lab scale benchmark: 9 hosts SSH-ready, idle memory per host, teardown.

Targets (issue #2): 9 hosts SSH-ready <= 10 s with the base cached; <= 40 MB RSS per idle
host; teardown of 9 hosts <= 10 s. Run as root: `.venv/bin/python benchmarks/lab_scale.py`.
Exits non-zero when a target is missed.
"""
import concurrent.futures
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABCTL = str(ROOT / "lab" / "labctl")
NAME = "bench"
HOSTS = 9
PAGE = os.sysconf("SC_PAGE_SIZE")
PRESENT = 1 << 63
PFN_MASK = (1 << 55) - 1
TARGETS = {"ssh_ready_s": 10.0, "rss_mb_per_host": 40.0, "teardown_s": 10.0}


def labctl(*args):
    return subprocess.run([LABCTL, *args], check=True, capture_output=True, text=True)


def ssh(ip, command):
    return subprocess.run([LABCTL, "ssh", ip, command], capture_output=True, text=True, timeout=60)


def resident_pages(pid):
    """Physical frame numbers of the pages a process has resident (needs root)."""
    frames = set()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for line in maps:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            if start >= 1 << 47:  # [vsyscall]
                continue
            pagemap.seek(start // PAGE * 8)
            data = pagemap.read((end - start) // PAGE * 8)
            frames.update(e & PFN_MASK for (e,) in struct.iter_unpack("<Q", data) if e & PRESENT)
    return frames


def host_memory_mb(name):
    """A host's RSS: its processes' distinct resident pages (a page shared by two of its
    processes counts once). Also the per-process sums of RSS (shared pages counted in every
    process) and PSS, for comparison."""
    cg = next(p for p in (Path(f"/sys/fs/cgroup/systemd/scratchbird-lab-{NAME}/{name}"),
                          Path(f"/sys/fs/cgroup/scratchbird-lab-{NAME}/{name}")) if p.exists())
    pids = {int(p) for f in cg.rglob("cgroup.procs") for p in f.read_text().split()}
    frames, rss, pss = set(), 0, 0
    for pid in pids:
        try:
            frames |= resident_pages(pid)
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return {"resident": len(frames) * PAGE / 2**20, "rss_sum": rss / 1024, "pss_sum": pss / 1024,
            "procs": len(pids)}


def main():
    labctl("base")
    labctl("down", "--name", NAME)
    names = [f"h{i}" for i in range(1, HOSTS + 1)]
    started = time.monotonic()
    labctl("up", "--name", NAME, "--subnet", "auto", *[f"--host={n}:tx_engines" for n in names])
    banner_s = time.monotonic() - started
    state = json.loads(labctl("status", "--json", "--name", NAME).stdout)[0]
    ips = [state["hosts"][n]["ip"] for n in names]
    with concurrent.futures.ThreadPoolExecutor(HOSTS) as pool:
        logins = list(pool.map(lambda ip: ssh(ip, "true").returncode, ips))
    ssh_ready_s = time.monotonic() - started
    if any(logins):
        sys.exit(f"ssh login failed on some hosts: {logins}")
    with concurrent.futures.ThreadPoolExecutor(HOSTS) as pool:
        booted = list(pool.map(lambda ip: ssh(ip, "systemctl is-system-running --wait").stdout.strip(), ips))
    booted_s = time.monotonic() - started
    mem = [host_memory_mb(n) for n in names]
    started = time.monotonic()
    labctl("down", "--name", NAME)
    teardown_s = time.monotonic() - started

    def mean(key):
        return round(sum(m[key] for m in mem) / len(mem), 1)

    figures = {
        "hosts": HOSTS,
        "ssh_banner_s": round(banner_s, 2),
        "ssh_ready_s": round(ssh_ready_s, 2),
        "systemd_booted_s": round(booted_s, 2),
        "boot_states": sorted(set(booted)),
        "rss_mb_per_host": round(max(m["resident"] for m in mem), 1),
        "rss_mb_per_host_mean": mean("resident"),
        "process_rss_sum_mb_mean": mean("rss_sum"),
        "process_pss_sum_mb_mean": mean("pss_sum"),
        "processes_per_host": mean("procs"),
        "teardown_s": round(teardown_s, 2),
    }
    print(f"lab_scale: {HOSTS} hosts")
    print(f"  SSH-ready (login works on all): {figures['ssh_ready_s']:6.2f} s   target <= {TARGETS['ssh_ready_s']} s"
          f"   (sshd banner {figures['ssh_banner_s']} s, systemd fully booted {figures['systemd_booted_s']} s)")
    print(f"  RSS per idle host (max):        {figures['rss_mb_per_host']:6.1f} MB  target <= "
          f"{TARGETS['rss_mb_per_host']} MB   (distinct resident pages of its processes; mean {figures['rss_mb_per_host_mean']} MB)")
    print(f"    per-process sums, mean: RSS {figures['process_rss_sum_mb_mean']} MB (shared pages counted"
          f" per process), PSS {figures['process_pss_sum_mb_mean']} MB, {figures['processes_per_host']} processes")
    print(f"  teardown of {HOSTS} hosts:           {figures['teardown_s']:6.2f} s   target <= {TARGETS['teardown_s']} s")
    print(json.dumps(figures))
    missed = [k for k, limit in TARGETS.items() if figures[k] > limit]
    if missed:
        sys.exit(f"targets missed: {', '.join(missed)}")


if __name__ == "__main__":
    main()
