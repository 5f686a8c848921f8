"""Labs boot on a busy machine: three 9-host labs come up at once beside a CPU load (27 systemd
hosts sharing root's inotify instances, which the default limit of 128 cannot hold), and every
host is SSH-ready. Each lab's boot time is printed (pytest -s) for docs/testing.md."""
from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import time
from pathlib import Path

from test_lab_hosts import LABCTL, labctl, pytestmark, ssh, state  # noqa: F401  (pytestmark: root only)

LABS = ("load-a", "load-b", "load-c")
HOSTS = [f"h{i}" for i in range(1, 10)]


def up(name):
    began = time.monotonic()
    res = subprocess.run([LABCTL, "up", "--name", name, "--subnet", "auto",
                          *[a for h in HOSTS for a in ("--host", f"{h}:tx_engines")]],
                         capture_output=True, text=True, timeout=1000)
    return res, time.monotonic() - began


def test_three_labs_boot_at_once_under_cpu_load():
    for name in LABS:
        labctl("down", "--name", name)
    # Bounded load: one busy process per core, each ends by itself after 120 s.
    load = [subprocess.Popen([sys.executable, "-c", "import time\nend=time.time()+120\nwhile time.time()<end: pass"])
            for _ in range(2)]
    try:
        with concurrent.futures.ThreadPoolExecutor(len(LABS)) as pool:
            results = dict(zip(LABS, pool.map(up, LABS)))
        for name, (res, seconds) in results.items():
            print(f"lab {name}: 9 hosts up in {seconds:.1f}s under load")
            assert res.returncode == 0, res.stderr
        limit = int(Path("/proc/sys/fs/inotify/max_user_instances").read_text())
        assert limit >= 128 + 16 * 27, limit
        for name in LABS:
            lab = state(name)
            assert sorted(lab["hosts"]) == HOSTS
            for h in lab["hosts"].values():
                assert ssh(h["ip"], "systemctl is-system-running --wait").stdout.strip() in ("running", "degraded")
    finally:
        for p in load:
            p.kill()
            p.wait()
        for name in LABS:
            labctl("down", "--name", name)
