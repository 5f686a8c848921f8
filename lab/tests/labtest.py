"""Shared by the lab tests: a lab of one host for a test module, commands on it, playbooks."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LABCTL = str(ROOT / "lab" / "labctl")
VENV = ROOT / ".venv" / "bin"
ENV = dict(
    os.environ,
    PATH=f"{VENV}:{os.environ.get('PATH', '')}",
    ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"),
    ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
    ANSIBLE_NOCOLOR="1",
    ANSIBLE_FORCE_COLOR="0",
)


@contextlib.contextmanager
def one_host_lab(lab, host, groups="tx_engines"):
    """A fresh lab `lab` with one host; yields its inventory path, and tears it all down."""
    subprocess.run([LABCTL, "down", "--name", lab], capture_output=True, timeout=300)
    try:
        up = subprocess.run([LABCTL, "up", "--name", lab, "--subnet", "auto", "--host", f"{host}:{groups}"],
                            capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stderr
        yield subprocess.run([LABCTL, "inventory-path", "--name", lab], capture_output=True, text=True,
                             check=True).stdout.strip()
    finally:
        subprocess.run([LABCTL, "down", "--name", lab], capture_output=True, timeout=300)


def on_host(lab, host, command, stdin=None, check=True, timeout=300):
    """Run a shell command on a lab host (as root)."""
    res = subprocess.run([LABCTL, "ssh", "--name", lab, host, command], input=stdin,
                         capture_output=True, text=True, timeout=timeout)
    if check:
        assert res.returncode == 0, f"{command}\n{res.stdout}\n{res.stderr}"
    return res


def playbook(inventory, path, extra_vars=None, *args, timeout=300):
    """ansible-playbook with the collection from this tree: one inventory or a list of them,
    the extra vars as JSON, then any other arguments (--check, --limit ...)."""
    cmd = [str(VENV / "ansible-playbook"), str(path)]
    for item in [inventory] if isinstance(inventory, str) else inventory:
        cmd += ["-i", str(item)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    cmd += list(args)
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=timeout)
