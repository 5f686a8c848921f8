"""The collection builds, installs into a fresh path, and documents every role and plugin."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLUGIN_TYPES = {"modules": "module", "inventory": "inventory", "lookup": "lookup", "filter": "filter"}


def run(*cmd, env):
    res = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], capture_output=True, text=True, env=env, timeout=300, check=False,
                         cwd=env["ANSIBLE_COLLECTIONS_PATH"])
    assert res.returncode == 0, f"{' '.join(cmd)}:\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("collection")
    # A clean environment: not the checkout's ansible.cfg nor its collection link.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    (tmp / "collections").mkdir()
    (tmp / "ansible.cfg").write_text("[defaults]\n")
    env.update(ANSIBLE_COLLECTIONS_PATH=str(tmp / "collections"), ANSIBLE_CONFIG=str(tmp / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1")
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    run("ansible-galaxy", "collection", "build", "--output-path", str(tmp), str(ROOT), env=env)
    tarball = tmp / f"scratchbird-cluster-{galaxy['version']}.tar.gz"
    run("ansible-galaxy", "collection", "install", "-p", str(tmp / "collections"), str(tarball), env=env)
    yield {"tarball": tarball, "path": tmp / "collections" / "ansible_collections" / "scratchbird" / "cluster",
           "env": env}


def test_tarball_leaves_out_dev_only_material(installed):
    with tarfile.open(installed["tarball"]) as tar:
        top = {name.split("/")[0] for name in tar.getnames()}
    assert {"MANIFEST.json", "FILES.json", "roles", "playbooks", "meta", "README.md"} <= top
    assert not top & {"lab", "benchmarks", "molecule", ".cache", ".venv", "Makefile", "ansible.cfg", ".ci"}


def test_installed_collection_is_listed(installed):
    path, env = installed["path"], installed["env"]
    out = run("ansible-galaxy", "collection", "list", "scratchbird.cluster", env=env)
    assert "scratchbird.cluster" in out and "0.1.0" in out
    assert (path / "meta" / "runtime.yml").is_file()


def test_ansible_doc_documents_every_role(installed):
    path, env = installed["path"], installed["env"]
    roles = sorted(p.name for p in (path / "roles").iterdir())
    assert roles
    for role in roles:
        out = run("ansible-doc", "-t", "role", f"scratchbird.cluster.{role}", env=env)
        assert "ENTRY POINT: main" in out.replace("*", ""), out


def test_ansible_doc_documents_every_plugin(installed):
    path, env = installed["path"], installed["env"]
    for folder, kind in PLUGIN_TYPES.items():
        plugin_dir = path / "plugins" / folder
        if not plugin_dir.exists():
            continue
        if kind == "filter":
            # One file holds several filters; each has a documentation sidecar <name>.yml.
            names = sorted(p.stem for p in plugin_dir.glob("*.yml"))
            listed = run("ansible-doc", "-t", kind, "-l", "scratchbird.cluster", env=env)
            assert names and all(f"scratchbird.cluster.{n}" in listed for n in names), listed
        else:
            names = sorted(p.stem for p in plugin_dir.glob("*.py") if p.name != "__init__.py")
        for name in names:
            out = run("ansible-doc", "-t", kind, f"scratchbird.cluster.{name}", env=env)
            assert name in out


def test_playbook_from_the_installed_collection_parses(installed):
    env = installed["env"]
    out = run("ansible-playbook", "--syntax-check", "-i", "localhost,", str(ROOT / "bootstrap-cluster.yml"), env=env)
    assert "playbook:" in out


def test_execution_environment_definition_builds_a_context(installed, tmp_path):
    for name in ("execution-environment.yml", "requirements.txt", "requirements.yml", "bindep.txt"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / installed["tarball"].name).write_bytes(installed["tarball"].read_bytes())
    run("ansible-builder", "create", "-f", str(tmp_path / "execution-environment.yml"),
        "-c", str(tmp_path / "context"), env=installed["env"])
    dockerfile = (tmp_path / "context" / "Dockerfile").read_text()
    assert "ansible-core==2.19.14" in dockerfile
    assert "ansible-galaxy collection install /tmp/collection/scratchbird-cluster-" in dockerfile
    assert (tmp_path / "context" / "_build" / "collection" / installed["tarball"].name).is_file()


def test_example_inventories_use_documented_options(installed):
    """Each example in inventories/<cloud>/ names its plugin and only options that plugin documents,
    with allowed values (checked offline: ansible-doc's JSON, no call to any cloud)."""
    examples = sorted(ROOT.glob("inventories/*/*.yml"))
    examples = [p for p in examples if "plugin" in (yaml.safe_load(p.read_text()) or {})]
    assert len(examples) == 4
    for path in examples:
        config = yaml.safe_load(path.read_text())
        plugin = config["plugin"]
        doc = json.loads(run("ansible-doc", "-t", "inventory", "-j", plugin, env=installed["env"]))[plugin]["doc"]
        options = doc["options"]
        assert path.name.endswith(plugin.split(".")[-1] + ".yml"), path
        for key, value in config.items():
            assert key in options, f"{path}: {key} is not an option of {plugin}"
            if "choices" in options[key]:
                assert value in options[key]["choices"], f"{path}: {key}: {value!r} not in {options[key]['choices']}"
