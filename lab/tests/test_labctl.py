"""Unit tests of lab/labctl's pure parts: layout, apt sources, inventory."""
from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest
import yaml

LABCTL = Path(__file__).resolve().parents[1] / "labctl"


def _load():
    loader = importlib.machinery.SourceFileLoader("labctl", str(LABCTL))
    spec = importlib.util.spec_from_loader("labctl", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


labctl = _load()

DEB822 = """\
Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no
"""

ONE_LINE = """\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example:8080/debian bookworm main contrib
deb http://other.example/ubuntu jammy main
"""


@pytest.fixture
def sources(tmp_path):
    a = tmp_path / "debian.sources"
    a.write_text(DEB822)
    b = tmp_path / "sources.list"
    b.write_text(ONE_LINE)
    return labctl.apt_sources([a, b])


def test_apt_sources_reads_both_formats_and_skips_disabled_and_src(sources):
    assert sources == [
        ("http://mirror.example/debian", ["bookworm", "bookworm-updates"], ["main"]),
        ("http://security.example/debian-security", ["bookworm-security"], ["main"]),
        ("http://mirror.example:8080/debian", ["bookworm"], ["main", "contrib"]),
        ("http://other.example/ubuntu", ["jammy"], ["main"]),
    ]


def test_debian_mirror_is_the_plain_suite(sources):
    assert labctl.debian_mirror(sources) == "http://mirror.example/debian"


def test_debian_mirror_missing_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        labctl.debian_mirror([("http://x.example/ubuntu", ["jammy"], ["main"])])
    assert "no http(s) apt source for 'bookworm'" in capsys.readouterr().err


def test_lab_sources_keep_only_the_suite_family(sources):
    assert labctl.lab_sources(sources).splitlines() == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://security.example/debian-security bookworm-security main",
        "deb http://mirror.example:8080/debian bookworm main",
    ]


def test_mirror_endpoints_are_distinct_host_ports(sources):
    assert labctl.mirror_endpoints(sources) == [
        ("mirror.example", 80), ("security.example", 80), ("mirror.example", 8080)]


LAYOUT = """\
# demo
name: sblab
subnet: 10.213.0.0/24
hosts:
  clock-1: [clock_masters]   # primary
  tx-1: [tx_engines, "kafka_brokers"]
"""


def test_parse_layout():
    assert labctl.parse_layout(LAYOUT) == {
        "name": "sblab", "subnet": "10.213.0.0/24",
        "hosts": {"clock-1": ["clock_masters"], "tx-1": ["tx_engines", "kafka_brokers"]}}


@pytest.mark.parametrize("text,message", [
    ("nmae: x\n", "unknown key 'nmae'"),
    ("hosts:\n  a: tx_engines\n", "host 'a' needs a group list"),
    ("hosts: [a]\n", "'hosts:' takes an indented mapping"),
    ("name: x\n  sub: y\n", "unexpected indentation"),
    ("just text\n", "expected 'key: value'"),
])
def test_parse_layout_errors_name_the_line(text, message):
    with pytest.raises(ValueError, match=message):
        labctl.parse_layout(text)


def test_repository_layout_is_valid():
    layout = labctl.parse_layout(labctl.DEFAULT_LAYOUT.read_text())
    labctl.validate_layout(layout)
    groups = {g for gs in layout["hosts"].values() for g in gs}
    # every cluster group has a host; the others are the lab's own (lab_tansu: the stand-in Kafka)
    assert set(labctl.GROUPS) <= groups and all(g.startswith("lab_") for g in groups - set(labctl.GROUPS))


@pytest.mark.parametrize("layout,message", [
    ({"name": "Bad_Name", "hosts": {"a": []}}, "lab name"),
    ({"name": "ok", "hosts": {}}, "no hosts"),
    ({"name": "ok", "hosts": {"A!": []}}, "host name"),
    ({"name": "ok", "hosts": {"a": ["Bad-Group"]}}, "bad group name"),
])
def test_validate_layout_rejects(layout, message, capsys):
    with pytest.raises(SystemExit):
        labctl.validate_layout(layout)
    assert message in capsys.readouterr().err


def test_inventory_places_hosts_in_the_collection_groups():
    state = {"name": "sblab", "subnet": "10.213.0.0/24", "hosts": {
        "clock-1": {"ip": "10.213.0.11", "groups": ["clock_masters"]},
        "tx-1": {"ip": "10.213.0.12", "groups": ["tx_engines", "extra"]},
    }}
    inv = yaml.safe_load(labctl.inventory_yaml(state))["all"]
    assert inv["hosts"] == {"clock-1": {"ansible_host": "10.213.0.11"},
                            "tx-1": {"ansible_host": "10.213.0.12"}}
    children = inv["children"]
    assert list(children)[:5] == list(labctl.GROUPS)
    assert children["clock_masters"] == {"hosts": {"clock-1": None}}
    assert children["tx_engines"] == {"hosts": {"tx-1": None}}
    assert children["extra"] == {"hosts": {"tx-1": None}}
    assert children["olap_shards"] is None
    assert "labctl proxy %h %p" in inv["vars"]["ansible_ssh_common_args"]
    assert inv["vars"]["cluster_cidr"] == "10.213.0.0/24"


def test_pick_subnet_skips_subnets_of_other_labs(monkeypatch):
    monkeypatch.setattr(labctl, "all_states", lambda: [
        {"name": "a", "subnet": "10.213.10.0/24"}, {"name": "b", "subnet": "10.213.11.0/24"}])
    assert labctl.pick_subnet("c", "auto") == "10.213.12.0/24"
    assert labctl.pick_subnet("a", "auto") == "10.213.10.0/24"  # its own subnet is free to it
    assert labctl.pick_subnet("c", "10.213.0.0/24") == "10.213.0.0/24"
    with pytest.raises(SystemExit):
        labctl.pick_subnet("c", "10.213.11.0/24")
    with pytest.raises(SystemExit):
        labctl.pick_subnet("c", "10.213.0.0/16")


def test_hosts_file_maps_hosts_and_mirrors():
    state = {"hosts": {"tx-1": {"ip": "10.213.0.11"}},
             "relays": [{"host": "mirror.example", "ip": "10.213.0.254"}]}
    text = labctl.hosts_file(state)
    assert "10.213.0.11 tx-1\n" in text
    assert "10.213.0.254 mirror.example\n" in text
