"""Clock monitoring of the gpsd_chrony role (tasks/metrics.yml) on a real lab host, and the
clock alert rules playbook (playbooks/clock_alert_rules.yml, the clock_alert_rules role).

The lab host runs real chronyd (-x, the lab drop-in) synchronised to a second chronyd -x on
the same host (127.0.0.1:11123, "local stratum 5"), so chronyc reports a selected source.
chrony_exporter does not exist here: a fake one (a small Python HTTP server named
chrony_exporter) is packed like a release tarball, or shipped bare, with its sha256 -- what
is tested is the deployment path (copy/download, checksum, unit, restart on change).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time

import pytest
import yaml
from labtest import ENV, ROOT, on_host, one_host_lab

LAB = "it-met"
HOST = "m1"
PLAYBOOK = ROOT / "lab" / "tests" / "playbooks" / "clock_metrics.yml"
ALERT_PLAYBOOK = ROOT / "playbooks" / "clock_alert_rules.yml"
TEXTFILE = "/var/lib/prometheus/node-exporter/chrony.prom"
EXPORTER_PORT = 9123

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


# The test playbook's variables, made faster: the timer fires every 3 s.
BASE_VARS = {"gpsd_chrony_metrics_interval": 3}

# chronyd -x serving its own clock on 127.0.0.1:11123 (no unix socket, no command port),
# and the host's chronyd using it as its only source.
NTP_SERVER_CONF = """\
port 11123
allow 127.0.0.1
local stratum 5
cmdport 0
bindcmdaddress /
pidfile /run/chrony-lab-server.pid
"""
CHRONY_CLIENT_CONF = "server 127.0.0.1 port 11123 iburst minpoll 0 maxpoll 1\n"

FAKE_EXPORTER = r"""#!/usr/bin/python3
# A stand-in for chrony_exporter (tests only): serves /metrics with its version and argv.
import http.server
import json
import sys

VERSION = "@VERSION@"
listen = ":9123"
for arg in sys.argv[1:]:
    if arg.startswith("--web.listen-address="):
        listen = arg.split("=", 1)[1]
host, _, port = listen.rpartition(":")
args = json.dumps(sys.argv[1:]).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
BODY = ("# HELP fake_chrony_exporter_build_info Fake chrony_exporter.\n"
        "# TYPE fake_chrony_exporter_build_info gauge\n"
        'fake_chrony_exporter_build_info{version="%s",args="%s"} 1\n' % (VERSION, args)).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/metrics":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer((host.strip("[]"), int(port)), Handler).serve_forever()
"""


# ---------------------------------------------------------------- helpers

def sh(command, stdin=None, check=True, timeout=120):
    return on_host(LAB, HOST, command, stdin=stdin, check=check, timeout=timeout)


def wait_for(what, probe, timeout=60.0, interval=1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class Run:
    def __init__(self, res):
        self.rc = res.returncode
        self.out = res.stdout + res.stderr
        self.text = " ".join(self.out.split())  # the YAML callback wraps long messages
        self.recap = {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)),
                                   "unreachable": int(m.group(4)), "failed": int(m.group(5))}
                      for m in RECAP.finditer(res.stdout)}

    def changed(self, host):
        return self.recap[host]["changed"]

    def ok(self):
        assert self.rc == 0, self.out[-6000:]
        return self


def ansible_playbook(inventory, playbook, extra_vars, tmp_path, check=False):
    varsfile = tmp_path / f"vars-{time.monotonic_ns()}.json"
    varsfile.write_text(json.dumps(extra_vars))
    cmd = ["ansible-playbook", "-i", str(inventory), str(playbook), "-e", f"@{varsfile}"]
    if check:
        cmd += ["--check", "--diff"]
    return Run(subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600))


def play(lab, tmp_path, check=False, **extra):
    return ansible_playbook(lab, PLAYBOOK, dict(BASE_VARS, **extra), tmp_path, check=check)


def read_textfile():
    res = sh(f"cat {TEXTFILE}", check=False)
    return res.stdout if res.returncode == 0 else None


_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})?[ \t]+(\S+)(?:[ \t]+(-?[0-9]+))?$")
_LABEL = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\\n]|\\[\\"n])*)"[ \t]*(?:,|$)')
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def _float(text):
    if text in ("NaN", "+Inf", "-Inf", "Inf"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    return float(text)


def parse_exposition(text):
    """Strict parser of the Prometheus text format 0.0.4 as node_exporter's textfile
    collector reads it. Returns {family: {"type", "help", "samples": {labels tuple: value}}}."""
    assert text.endswith("\n"), "exposition must end with a newline"
    families, order, current = {}, [], None
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}: {line!r}"
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                assert re.fullmatch(_NAME, name), where
                family = families.setdefault(name, {"type": None, "help": None, "samples": {}})
                if name not in order:
                    order.append(name)
                assert not family["samples"], f"{where}: {parts[1]} after samples"
                key = parts[1].lower()
                assert family[key] is None, f"{where}: second {parts[1]}"
                value = parts[3] if len(parts) > 3 else ""
                if parts[1] == "TYPE":
                    assert value in _TYPES, where
                family[key] = value
                current = name
            continue
        match = _SAMPLE.match(line)
        assert match, f"{where}: not a sample"
        name, body, value = match.group(1), match.group(2), match.group(3)
        labels = []
        if body:
            pos = 0
            while pos < len(body):
                lm = _LABEL.match(body, pos)
                assert lm and lm.end() > pos, f"{where}: bad labels"
                labels.append((lm.group(1), lm.group(2)))
                pos = lm.end()
            assert len({k for k, _ in labels}) == len(labels), f"{where}: repeated label"
        assert name in families and families[name]["type"], f"{where}: sample without TYPE"
        assert current == name, f"{where}: samples of {name} are not contiguous"
        key = tuple(sorted(labels))
        assert key not in families[name]["samples"], f"{where}: duplicate series"
        families[name]["samples"][key] = _float(value)
    return families


def unescape_label(text):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def value(families, name, **labels):
    return families[name]["samples"][tuple(sorted(labels.items()))]


def fake_exporter(version):
    return FAKE_EXPORTER.replace("@VERSION@", version).encode()


def tarball(version):
    """A release tarball like upstream's: <dir>/chrony_exporter and a LICENSE."""
    buf = io.BytesIO()
    top = f"chrony_exporter-{version}.linux-amd64"
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data, mode in ((f"{top}/LICENSE", b"test artifact\n", 0o644),
                                 (f"{top}/chrony_exporter", fake_exporter(version), 0o755)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 1700000000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def artifact(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def exporter_metrics():
    code = ("import urllib.request\n"
            f"print(urllib.request.urlopen('http://127.0.0.1:{EXPORTER_PORT}/metrics', timeout=5).read().decode())")
    res = sh(f"python3 -c \"{code}\"", check=False)
    return res.stdout if res.returncode == 0 else None


def exporter_build(version):
    """Wait until the exporter answers as `version`; its argv (JSON) from the metric."""
    text = wait_for(f"chrony_exporter {version} on /metrics",
                    lambda: (lambda t: t if t and f'version="{version}"' in t else None)(exporter_metrics()), 30)
    families = parse_exposition(text)
    (labels, _), = families["fake_chrony_exporter_build_info"]["samples"].items()
    return json.loads(unescape_label(dict(labels)["args"]))


def main_pid(unit):
    return sh(f"systemctl show -p MainPID --value {unit}").stdout.strip()


# ---------------------------------------------------------------- the lab

@pytest.fixture(scope="module")
def lab():
    with one_host_lab(LAB, HOST) as inventory:
        res = subprocess.run(["ansible", "-i", inventory, "all", "-m", "ansible.builtin.apt",
                              "-a", "name=chrony state=present"],
                             capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        # node_exporter's package leaves the textfile directory to its own user
        sh("useradd --system --no-create-home --shell /usr/sbin/nologin prometheus"
           " && mkdir -p /var/lib/prometheus/node-exporter"
           " && chown prometheus:prometheus /var/lib/prometheus/node-exporter"
           " && chmod 0755 /var/lib/prometheus/node-exporter")
        sh("mkdir -p /etc/chrony-lab && cat > /etc/chrony-lab/server.conf", stdin=NTP_SERVER_CONF)
        sh("systemd-run --unit=lab-ntp-server /usr/sbin/chronyd -d -x -f /etc/chrony-lab/server.conf")
        sh("sed -i 's/^pool /#pool /' /etc/chrony/chrony.conf && cat > /etc/chrony/conf.d/lab.conf",
           stdin=CHRONY_CLIENT_CONF)
        sh("systemctl restart chrony")
        wait_for("chronyd to select the lab NTP server",
                 lambda: "^,*,127.0.0.1," in sh("chronyc -n -c sources", check=False).stdout, 90)
        yield inventory
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [n for n in netns.split() if n == LAB or n.startswith(LAB + "_")], netns


# ---------------------------------------------------------------- textfile metrics

def test_check_mode_on_a_fresh_host_changes_nothing(lab, tmp_path):
    run = play(lab, tmp_path, check=True).ok()
    assert run.changed(HOST) > 0  # it would change things...
    assert sh("test -e /etc/systemd/system/chrony-metrics.timer", check=False).returncode == 1  # ...but did not
    assert sh("test -e /usr/local/lib/scratchbird", check=False).returncode == 1


def test_textfile_metrics_are_deployed(lab, tmp_path):
    run = play(lab, tmp_path).ok()
    assert run.changed(HOST) > 0
    assert sh("systemctl is-active chrony-metrics.timer").stdout.strip() == "active"
    assert sh("systemctl is-enabled chrony-metrics.timer").stdout.strip() == "enabled"
    text = wait_for("chrony.prom", read_textfile, 30)
    families = parse_exposition(text)

    assert value(families, "chrony_up") == 1
    assert value(families, "chrony_synchronised") == 1
    assert value(families, "chrony_stratum") == 6
    assert value(families, "chrony_local_reference") == 0
    assert value(families, "chrony_max_uncertainty_nanoseconds") == 50000000
    assert value(families, "chrony_leap_status", status="normal") == 1
    assert value(families, "chrony_leap_status", status="not_synchronised") == 0
    assert value(families, "chrony_sources", state="selected") == 1
    assert sum(families["chrony_sources"]["samples"].values()) == 1
    assert value(families, "chrony_selected_source_info", source="127.0.0.1", mode="server",
                 reference_id="7F000001") == 1
    uncertainty = value(families, "chrony_clock_uncertainty_nanoseconds")
    assert 0 <= uncertainty < 50000000
    assert value(families, "chrony_clock_within_bound") == 1
    for name in ("chrony_clock_offset_nanoseconds", "chrony_root_delay_nanoseconds",
                 "chrony_root_dispersion_nanoseconds", "chrony_frequency_ppm"):
        assert families[name]["type"] == "gauge" and families[name]["help"]
    now = int(sh("date +%s").stdout)
    assert abs(value(families, "chrony_metrics_last_run_timestamp_seconds") - now) < 60
    # only the textfile in the directory: the temporary file was renamed
    assert sh("ls -A /var/lib/prometheus/node-exporter").stdout.split() == ["chrony.prom"]
    assert sh(f"stat -c %a {TEXTFILE}").stdout.strip() == "644"
    # the directory keeps its owner; the sandboxed root service still writes there
    assert sh("stat -c '%U %a' /var/lib/prometheus/node-exporter").stdout.strip() == "prometheus 755"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed on the controller")
def test_textfile_passes_promtool_check_metrics(lab):
    res = subprocess.run(["promtool", "check", "metrics"], input=read_textfile(), capture_output=True, text=True)
    # exit 3 = lint findings only; the contract's *_nanoseconds names are the one finding allowed
    findings = [line for line in (res.stdout + res.stderr).splitlines() if line.strip()]
    assert res.returncode in (0, 3), findings
    assert all(re.match(r'^chrony_\w+_nanoseconds use base unit "seconds" instead of "nanoseconds"$', f)
               for f in findings), findings


def test_timer_refreshes_the_file_under_a_sandbox(lab):
    first = value(parse_exposition(read_textfile()), "chrony_metrics_last_run_timestamp_seconds")
    wait_for("the timer to rewrite chrony.prom",
             lambda: value(parse_exposition(read_textfile()), "chrony_metrics_last_run_timestamp_seconds") > first, 30)
    assert sh("systemctl show -p Result --value chrony-metrics.service").stdout.strip() == "success"
    props = dict(line.split("=", 1) for line in sh(
        "systemctl show chrony-metrics.service -p User -p NoNewPrivileges -p ProtectSystem -p ProtectHome "
        "-p PrivateTmp -p ReadWritePaths -p CapabilityBoundingSet").stdout.splitlines())
    assert props["NoNewPrivileges"] == "yes"
    assert props["ProtectSystem"] == "strict"
    assert props["ProtectHome"] == "yes" and props["PrivateTmp"] == "yes"
    assert "/var/lib/prometheus/node-exporter" in props["ReadWritePaths"]
    assert props["CapabilityBoundingSet"] == "cap_dac_override"
    timer = sh("systemctl cat chrony-metrics.timer").stdout
    for line in ("OnBootSec=3s", "OnUnitActiveSec=3s", "AccuracySec=1s"):
        assert line in timer


def test_second_run_changes_nothing(lab, tmp_path):
    assert play(lab, tmp_path).ok().changed(HOST) == 0
    assert play(lab, tmp_path, check=True).ok().changed(HOST) == 0


def test_chronyd_down_gives_chrony_up_0(lab):
    sh("systemctl stop chrony")
    try:
        sh("systemctl start chrony-metrics.service")
        families = parse_exposition(read_textfile())
        assert value(families, "chrony_up") == 0
        assert value(families, "chrony_max_uncertainty_nanoseconds") == 50000000
        assert "chrony_synchronised" not in families and "chrony_stratum" not in families
        assert "chrony_metrics_last_run_timestamp_seconds" in families
        assert "chronyd is not running" in sh("journalctl -u chrony-metrics.service -o cat --no-pager").stdout
    finally:
        sh("systemctl start chrony")
    wait_for("chrony_up 1 again",
             lambda: value(parse_exposition(read_textfile()), "chrony_up") == 1, 60)


def test_interval_change_reaches_the_timer(lab, tmp_path):
    run = play(lab, tmp_path, gpsd_chrony_metrics_interval=4).ok()
    assert run.changed(HOST) > 0
    assert "OnUnitActiveSec=4s" in sh("systemctl cat chrony-metrics.timer").stdout
    assert sh("systemctl show -p NeedDaemonReload --value chrony-metrics.timer").stdout.strip() == "no"
    assert play(lab, tmp_path).ok().changed(HOST) > 0  # back to 3 s
    assert play(lab, tmp_path).ok().changed(HOST) == 0


# ---------------------------------------------------------------- chrony_exporter

EXPORTER_ARGS = ["--chrony.address=127.0.0.1:323", "--collector.sources", "--label=a b%c$d\"e\\f"]


def test_exporter_from_a_tarball(lab, tmp_path):
    path, sha = artifact(tmp_path, "chrony_exporter-1.0.tar.gz", tarball("1.0"))
    dry = play(lab, tmp_path, check=True, gpsd_chrony_exporter_artifact_src=str(path),
               gpsd_chrony_exporter_artifact_sha256=sha, gpsd_chrony_exporter_args=EXPORTER_ARGS).ok()
    assert dry.changed(HOST) > 0
    assert sh("test -e /etc/systemd/system/chrony_exporter.service", check=False).returncode == 1
    assert sh("test -e /opt/chrony_exporter", check=False).returncode == 1
    run = play(lab, tmp_path, gpsd_chrony_exporter_artifact_src=str(path), gpsd_chrony_exporter_artifact_sha256=sha,
               gpsd_chrony_exporter_args=EXPORTER_ARGS).ok()
    assert run.changed(HOST) > 0
    assert sh("systemctl is-active chrony_exporter").stdout.strip() == "active"
    assert sh("systemctl is-enabled chrony_exporter").stdout.strip() == "enabled"
    argv = exporter_build("1.0")
    assert argv == [f"--web.listen-address=:{EXPORTER_PORT}"] + EXPORTER_ARGS  # systemd quoting kept every byte
    assert sh(f"ps -o user= -p {main_pid('chrony_exporter')}").stdout.strip() == "chrony_exporter"
    assert sh("readlink /opt/chrony_exporter/chrony_exporter").stdout.strip() == \
        f"/opt/chrony_exporter/releases/{sha}/chrony_exporter-1.0.linux-amd64/chrony_exporter"
    props = sh("systemctl show chrony_exporter -p NoNewPrivileges -p ProtectSystem -p CapabilityBoundingSet").stdout
    assert "NoNewPrivileges=yes" in props and "ProtectSystem=strict" in props
    assert "CapabilityBoundingSet=\n" in props + "\n"

    pid = main_pid("chrony_exporter")
    again = play(lab, tmp_path, gpsd_chrony_exporter_artifact_src=str(path), gpsd_chrony_exporter_artifact_sha256=sha,
                 gpsd_chrony_exporter_args=EXPORTER_ARGS).ok()
    assert again.changed(HOST) == 0
    assert main_pid("chrony_exporter") == pid


def test_new_artifact_restarts_the_exporter(lab, tmp_path):
    old_pid = main_pid("chrony_exporter")
    path, sha = artifact(tmp_path, "chrony_exporter-2.0.tar.gz", tarball("2.0"))
    run = play(lab, tmp_path, gpsd_chrony_exporter_artifact_src=str(path), gpsd_chrony_exporter_artifact_sha256=sha,
               gpsd_chrony_exporter_args=EXPORTER_ARGS).ok()
    assert run.changed(HOST) > 0
    exporter_build("2.0")
    assert main_pid("chrony_exporter") != old_pid
    # earlier artifacts and releases are removed
    assert sh("ls /opt/chrony_exporter/releases").stdout.split() == [sha]
    assert sh("ls /opt/chrony_exporter/artifacts").stdout.split() == [sha]


@pytest.fixture
def artifact_server(lab):
    """An HTTP server on the lab host's loopback serving /root/artifacts."""
    sh("mkdir -p /root/artifacts && systemd-run --unit=lab-artifacts "
       "python3 -m http.server 8765 --bind 127.0.0.1 --directory /root/artifacts")
    try:
        yield "http://127.0.0.1:8765"
    finally:
        sh("systemctl stop lab-artifacts", check=False)


def test_bare_binary_by_url_and_bad_input(lab, tmp_path, artifact_server):
    data = fake_exporter("3.0")
    sha = hashlib.sha256(data).hexdigest()
    sh("cat > /root/artifacts/chrony_exporter", stdin=data.decode())
    url = f"{artifact_server}/chrony_exporter"
    old_pid = main_pid("chrony_exporter")
    run = play(lab, tmp_path, gpsd_chrony_exporter_artifact_url=url, gpsd_chrony_exporter_artifact_sha256=sha).ok()
    assert run.changed(HOST) > 0
    assert exporter_build("3.0") == [f"--web.listen-address=:{EXPORTER_PORT}"]
    assert main_pid("chrony_exporter") != old_pid
    assert sh("readlink /opt/chrony_exporter/chrony_exporter").stdout.strip() == \
        f"/opt/chrony_exporter/releases/{sha}/chrony_exporter"
    assert play(lab, tmp_path, gpsd_chrony_exporter_artifact_url=url,
                gpsd_chrony_exporter_artifact_sha256=sha).ok().changed(HOST) == 0
    pid = main_pid("chrony_exporter")

    path, good_sha = artifact(tmp_path, "chrony_exporter-4.0.tar.gz", tarball("4.0"))
    both = play(lab, tmp_path, gpsd_chrony_exporter_artifact_url=url, gpsd_chrony_exporter_artifact_src=str(path),
                gpsd_chrony_exporter_artifact_sha256=sha)
    assert both.rc != 0
    assert "gpsd_chrony_exporter_artifact_url and gpsd_chrony_exporter_artifact_src are both set" in both.text

    no_sha = play(lab, tmp_path, gpsd_chrony_exporter_artifact_src=str(path))
    assert no_sha.rc != 0
    assert "gpsd_chrony_exporter_artifact_sha256 must be the artifact's sha256" in no_sha.text

    wrong_src = play(lab, tmp_path, gpsd_chrony_exporter_artifact_src=str(path),
                     gpsd_chrony_exporter_artifact_sha256="0" * 64)
    assert wrong_src.rc != 0
    assert f"has sha256 {good_sha}, but gpsd_chrony_exporter_artifact_sha256 is {'0' * 64}" in wrong_src.text

    wrong_url = play(lab, tmp_path, gpsd_chrony_exporter_artifact_url=url,
                     gpsd_chrony_exporter_artifact_sha256="1" * 64)
    assert wrong_url.rc != 0
    assert "checksum" in wrong_url.out.lower()

    no_member = play(lab, tmp_path, gpsd_chrony_exporter_artifact_src=str(path),
                     gpsd_chrony_exporter_artifact_sha256=good_sha,
                     gpsd_chrony_exporter_binary_in_archive="bin/chrony_exporter")
    assert no_member.rc != 0
    assert "without the member gpsd_chrony_exporter_binary_in_archive=bin/chrony_exporter" in no_member.text

    # none of that touched the running exporter
    assert main_pid("chrony_exporter") == pid
    exporter_build("3.0")


def test_disabling_the_textfile_removes_it(lab, tmp_path, artifact_server):
    sha = hashlib.sha256(fake_exporter("3.0")).hexdigest()
    url = f"{artifact_server}/chrony_exporter"
    pid = main_pid("chrony_exporter")
    run = play(lab, tmp_path, gpsd_chrony_metrics_textfile=False, gpsd_chrony_exporter_artifact_url=url,
               gpsd_chrony_exporter_artifact_sha256=sha).ok()
    assert run.changed(HOST) > 0
    assert sh("test -e /etc/systemd/system/chrony-metrics.timer", check=False).returncode == 1
    assert sh("systemctl is-active chrony-metrics.timer", check=False).stdout.strip() == "inactive"
    assert read_textfile() is None
    assert main_pid("chrony_exporter") == pid
    assert play(lab, tmp_path, gpsd_chrony_metrics_textfile=False, gpsd_chrony_exporter_artifact_url=url,
                gpsd_chrony_exporter_artifact_sha256=sha).ok().changed(HOST) == 0


# ---------------------------------------------------------------- alert rules

ALERTS = {"ClockSyncDegraded", "ClockSyncLost", "ClockUncertaintyOverBound", "ChronyNotSynchronised",
          "ChronyDown", "ChronyMetricsStale"}


@pytest.fixture
def localhost_inventory(tmp_path):
    inventory = tmp_path / "inventory.yml"  # empty: the play runs on the implicit localhost
    inventory.write_text("all: {}\n")
    return inventory


def render_rules(inventory, tmp_path, **extra):
    dest = tmp_path / "rules" / "scratchbird-clock.rules.yml"
    run = ansible_playbook(inventory, ALERT_PLAYBOOK, dict({"clock_alert_rules_dest": str(dest)}, **extra), tmp_path)
    return run, dest


def test_alert_rules_render_and_parse(localhost_inventory, tmp_path):
    run, dest = render_rules(localhost_inventory, tmp_path)
    run.ok()
    doc = yaml.safe_load(dest.read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == ALERTS
    for r in rules:
        assert set(r) == {"alert", "expr", "for", "labels", "annotations"}
        assert r["labels"]["severity"] in ("warning", "critical")
        assert r["annotations"]["summary"] and r["annotations"]["description"]
    exprs = {(r["alert"], r["labels"]["component"]): (r["expr"], r["for"]) for r in rules}
    assert exprs[("ClockSyncDegraded", "tx_engine")] == ("tx_engine_clock_uncertainty_nanoseconds / 1e9 > 0.1", "5m")
    assert exprs[("ClockSyncDegraded", "clock_master")][0].startswith("clock_master_uncertainty_nanoseconds")
    assert exprs[("ClockSyncLost", "tx_engine")] == ("increase(tx_engine_clock_heartbeats_missed_total[1m]) > 10", "1m")
    assert exprs[("ClockUncertaintyOverBound", "chrony")] == ("chrony_clock_uncertainty_nanoseconds / 1e9 > 0.05", "2m")
    assert exprs[("ChronyMetricsStale", "chrony")][0] == "time() - chrony_metrics_last_run_timestamp_seconds > 75"
    assert "{{ $labels.instance }}" in rules[0]["annotations"]["summary"]
    validated = "validated with promtool check rules" in run.text
    assert validated == (shutil.which("promtool") is not None), run.out[-2000:]
    # idempotent
    assert render_rules(localhost_inventory, tmp_path)[0].ok().changed("localhost") == 0

    custom, dest = render_rules(localhost_inventory, tmp_path, clock_alert_rules_degraded_ns=20000000,
                                clock_alert_rules_metrics_interval=30, clock_alert_rules_extra_labels={"team": "db"})
    custom.ok()
    rules = [r for g in yaml.safe_load(dest.read_text())["groups"] for r in g["rules"]]
    assert any(r["expr"] == "chrony_clock_uncertainty_nanoseconds / 1e9 > 0.02" for r in rules)
    assert any(r["expr"] == "time() - chrony_metrics_last_run_timestamp_seconds > 150" for r in rules)
    assert all(r["labels"]["team"] == "db" for r in rules)

    # The over-bound alert follows the cluster's bound (cluster_max_acceptable_uncertainty_ns, with units).
    bound, dest = render_rules(localhost_inventory, tmp_path, cluster_max_acceptable_uncertainty_ns="20ms")
    bound.ok()
    rules = [r for g in yaml.safe_load(dest.read_text())["groups"] for r in g["rules"]]
    over = {r["labels"]["component"]: r["expr"] for r in rules if r["alert"] == "ClockUncertaintyOverBound"}
    assert over["chrony"] == "chrony_clock_uncertainty_nanoseconds / 1e9 > 0.02", over
    assert "max_acceptable_uncertainty_ns = 20000000 ns" in [r for r in rules if r["alert"] == "ClockUncertaintyOverBound"][0][
        "annotations"]["description"]


def test_alert_rules_reject_bad_values(localhost_inventory, tmp_path):
    run, dest = render_rules(localhost_inventory, tmp_path, clock_alert_rules_degraded_for="5 minutes")
    assert run.rc != 0 and "clock_alert_rules_degraded_for must be a Prometheus duration" in run.text
    run, dest = render_rules(localhost_inventory, tmp_path, clock_alert_rules_lost_missed_heartbeats="ten")
    assert run.rc != 0 and "argument 'clock_alert_rules_lost_missed_heartbeats' is of type str" in run.text  # the argument spec
    run, dest = render_rules(localhost_inventory, tmp_path, clock_alert_rules_lost_missed_heartbeats=0)
    assert run.rc != 0 and "clock_alert_rules_lost_missed_heartbeats must be a whole number > 0" in run.text
    run, dest = render_rules(localhost_inventory, tmp_path, cluster_max_acceptable_uncertainty_ns="fast")
    assert run.rc != 0 and "cluster_max_acceptable_uncertainty_ns must be a duration" in run.text
    assert not dest.exists()


PROMTOOL_TEST = """\
rule_files: [{rules}]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'chrony_clock_uncertainty_nanoseconds{{instance="m1:9100",job="node"}}'
        values: '200000000x40'
      - series: 'tx_engine_clock_uncertainty_nanoseconds{{instance="tx-1:9090",job="tx"}}'
        values: '1000000x40'
      - series: 'tx_engine_clock_heartbeats_missed_total{{instance="tx-1:9090",job="tx"}}'
        values: '0+5x40'
      - series: 'chrony_synchronised{{instance="m1:9100",job="node"}}'
        values: '0x40'
      - series: 'chrony_up{{instance="m1:9100",job="node"}}'
        values: '1x40'
      - series: 'chrony_metrics_last_run_timestamp_seconds{{instance="m1:9100",job="node"}}'
        values: '0x40'
    alert_rule_test:
      - eval_time: 4m
        alertname: ClockSyncDegraded
        exp_alerts: []
      - eval_time: 6m
        alertname: ClockSyncDegraded
        exp_alerts:
          - exp_labels: {{severity: warning, component: chrony, instance: "m1:9100", job: node}}
            exp_annotations:
              summary: "Clock uncertainty of chrony on m1:9100 is above 100 ms"
              description: "Chrony on m1:9100 reports a clock uncertainty of 200ms for more than 5m; commit-wait latency grows with it. Check its time sources (chronyc sources)."
      - eval_time: 3m
        alertname: ClockUncertaintyOverBound
        exp_alerts:
          - exp_labels: {{severity: critical, component: chrony, instance: "m1:9100", job: node}}
            exp_annotations:
              summary: "Clock uncertainty of chrony on m1:9100 exceeds the deployment bound of 50 ms"
              description: "Chrony on m1:9100 reports a clock uncertainty of 200ms, over max_acceptable_uncertainty_ns = 50000000 ns, for 2m. Transactions wait longer or are refused."
      - eval_time: 3m
        alertname: ClockSyncLost
        exp_alerts:
          - exp_labels: {{severity: critical, component: tx_engine, instance: "tx-1:9090", job: tx}}
            exp_annotations:
              summary: "TX engine on tx-1:9090 misses clock master heartbeats"
              description: "TX engine on tx-1:9090 missed 20 clock heartbeats in the last 1m (threshold 10). Check the clock masters and UDP heartbeat traffic."
      - eval_time: 4m
        alertname: ChronyNotSynchronised
        exp_alerts: []
      - eval_time: 6m
        alertname: ChronyNotSynchronised
        exp_alerts:
          - exp_labels: {{severity: warning, component: chrony, instance: "m1:9100", job: node}}
            exp_annotations:
              summary: "chrony on m1:9100 is not synchronised"
              description: "chronyd on m1:9100 has had no usable reference for 5m (chronyc tracking: reference 00000000 or leap status Not synchronised)."
      - eval_time: 6m
        alertname: ChronyDown
        exp_alerts: []
      - eval_time: 1m
        alertname: ChronyMetricsStale
        exp_alerts: []
      - eval_time: 3m
        alertname: ChronyMetricsStale
        exp_alerts:
          - exp_labels: {{severity: warning, component: chrony, instance: "m1:9100", job: node}}
            exp_annotations:
              summary: "chrony metrics of m1:9100 are stale"
              description: "chrony.prom on m1:9100 was last written 3m 0s ago, more than 5 x the 15 s timer interval (systemctl status chrony-metrics.timer)."
"""


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed on the controller")
def test_alert_rules_pass_promtool_check_and_unit_tests(localhost_inventory, tmp_path):
    run, dest = render_rules(localhost_inventory, tmp_path)
    run.ok()
    check = subprocess.run(["promtool", "check", "rules", str(dest)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 10 rules found" in check.stdout
    tests = tmp_path / "rules" / "clock-alerts.test.yml"
    tests.write_text(PROMTOOL_TEST.format(rules=dest.name))
    res = subprocess.run(["promtool", "test", "rules", str(tests)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_alert_rules_on_a_host_without_promtool(lab, tmp_path):
    assert sh("command -v promtool", check=False).returncode != 0
    dest = "/etc/prometheus/rules/scratchbird-clock.rules.yml"
    run = ansible_playbook(lab, ALERT_PLAYBOOK, {"clock_alert_rules_hosts": HOST}, tmp_path).ok()
    assert "parse check only (no promtool on this host)" in run.text
    doc = yaml.safe_load(sh(f"cat {dest}").stdout)
    assert {r["alert"] for g in doc["groups"] for r in g["rules"]} == ALERTS
    assert sh(f"stat -c %a {dest}").stdout.strip() == "644"
