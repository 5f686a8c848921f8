"""The lab's stand-in GPS receiver (lab/gps/nmea_feeder.py), first locally, then end to end on
a real lab host: the feeder as a systemd unit, the distribution's gpsd reading it as
``tcp://127.0.0.1:10110`` and real chronyd (-x) selecting gpsd's SHM refclock (``#*``)."""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from functools import reduce
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LABCTL = str(ROOT / "lab" / "labctl")
GPS = ROOT / "lab" / "gps"
FEEDER = GPS / "nmea_feeder.py"
LAB = "it-gps"
HOST = "gps"

# What the test puts on the host; the README reports the same settings.
GPSD_DEFAULTS = """\
DEVICES="tcp://127.0.0.1:10110"
GPSD_OPTIONS="-n"
USBAUTO="false"
"""
REFCLOCK = "refclock SHM 0 refid GPS precision 1e-1 offset 0.0 delay 0.2 poll 2 filter 3"
CHRONY_CONF = """\
driftfile /var/lib/chrony/chrony.drift
logdir /var/log/chrony
log refclocks
{refclock}
local stratum 1
allow {subnet}
"""

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")
FIGURES: dict[str, float] = {}


# ---------------------------------------------------------------- the feeder, locally

def parse(text: str) -> dict[str, list[str]]:
    """Sentences by type; every one must be well formed with a correct checksum."""
    found = {}
    for line in text.splitlines():
        assert line.startswith("$") and line[-3] == "*", line
        body, cs = line[1:-3], line[-2:]
        assert cs == f"{reduce(lambda a, c: a ^ c, body.encode(), 0):02X}", line
        fields = body.split(",")
        found[fields[0]] = fields
    return found


def nmea_time(rmc: list[str]) -> dt.datetime:
    return dt.datetime.strptime(rmc[9] + rmc[1], "%d%m%y%H%M%S.%f").replace(tzinfo=dt.timezone.utc)


def test_once_prints_a_valid_burst_with_current_utc():
    before = dt.datetime.now(dt.timezone.utc)
    raw = subprocess.run([sys.executable, str(FEEDER), "--once", "--lat", "-33.8688", "--lon", "151.2093"],
                         capture_output=True, check=True).stdout
    assert raw.endswith(b"\r\n") and raw.count(b"\r\n") == raw.count(b"\n") == 4
    out = raw.decode("ascii")
    s = parse(out)
    assert list(s) == ["GPRMC", "GPGGA", "GPGSA", "GPZDA"]
    rmc, gga, gsa, zda = s["GPRMC"], s["GPGGA"], s["GPGSA"], s["GPZDA"]
    assert rmc[2] == "A" and rmc[12] == "A"
    assert abs((nmea_time(rmc) - before).total_seconds()) < 2
    assert rmc[3:7] == ["3352.1280", "S", "15112.5580", "E"]
    assert gga[1] == rmc[1] and gga[6] == "1" and int(gga[7]) >= 8 and float(gga[8]) == pytest.approx(0.9)
    assert gsa[1:3] == ["A", "3"] and len([p for p in gsa[3:15] if p]) == int(gga[7])
    assert zda[1] == rmc[1] and zda[4] == nmea_time(rmc).strftime("%Y")
    assert "GPZDA" not in parse(subprocess.run([sys.executable, str(FEEDER), "--once", "--no-zda"],
                                               capture_output=True, text=True, check=True).stdout)


def test_streams_second_aligned_bursts_to_every_client_and_stops_on_sigterm():
    proc = subprocess.Popen([sys.executable, str(FEEDER), "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
        assert "listening on 127.0.0.1:" in first, first
        port = int(first.rsplit(":", 1)[1])
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        clients[0].sendall(b'?WATCH={"enable":true}\r\n')      # input is read and ignored
        for n, conn in enumerate(clients):
            reader = conn.makefile("rb")
            epochs = []
            while len(epochs) < 2:
                line = reader.readline().decode()
                assert line.endswith("\r\n"), line
                if line.startswith("$GPRMC"):
                    epochs.append(nmea_time(parse(line.rstrip())["GPRMC"]))
                    late = time.time() - epochs[-1].timestamp()
                    if n == 0:   # the second client's bursts waited in its buffer meanwhile
                        assert 0 <= late < 0.25, f"burst {late:.3f} s after its second"
            assert (epochs[1] - epochs[0]).total_seconds() == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        for conn in clients:       # clients see an orderly close (EOF after what was pending)
            while conn.recv(4096):
                pass
        assert "nmea-feeder stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- on a real lab host

def labctl(*args, timeout=300, check=True):
    res = subprocess.run([LABCTL, *args], capture_output=True, text=True, timeout=timeout)
    assert not check or res.returncode == 0, f"labctl {' '.join(args)}:\n{res.stdout}\n{res.stderr}"
    return res


def sh(command, stdin=None, check=True, timeout=300):
    res = subprocess.run([LABCTL, "ssh", "--name", LAB, HOST, command], input=stdin,
                         capture_output=True, text=True, timeout=timeout)
    if check:
        assert res.returncode == 0, f"{command}\n{res.stdout}\n{res.stderr}"
    return res


def leftovers():
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in netns.splitlines()
            if line.split()[0] == LAB or line.startswith(f"{LAB}_")]


def figure(name, value):
    FIGURES[name] = round(value, 1)
    print(f"[gps-lab] {name}: {value:.1f}")


@pytest.fixture(scope="module")
def gps_host():
    labctl("down", "--name", LAB)
    try:
        labctl("up", "--name", LAB, "--subnet", "auto", "--host", f"{HOST}:clock_masters")
        subnet = json.loads(labctl("status", "--json", "--name", LAB).stdout)[0]["subnet"]
        started = time.monotonic()
        sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q gpsd chrony >/dev/null", timeout=600)
        figure("apt-get install gpsd chrony, s", time.monotonic() - started)
        sh("mkdir -p /usr/local/lib/scratchbird-lab /etc/systemd/system/gpsd.service.d"
           " && cat > /usr/local/lib/scratchbird-lab/nmea_feeder.py"
           " && chmod 0755 /usr/local/lib/scratchbird-lab/nmea_feeder.py", stdin=FEEDER.read_text())
        sh("cat > /etc/systemd/system/nmea-feeder.service", stdin=(GPS / "nmea-feeder.service").read_text())
        sh("cat > /etc/systemd/system/gpsd.service.d/nmea-feeder.conf",
           stdin=(GPS / "gpsd-nmea-feeder.conf").read_text())
        sh("cat > /etc/default/gpsd", stdin=GPSD_DEFAULTS)
        sh("cat > /etc/chrony/chrony.conf", stdin=CHRONY_CONF.format(refclock=REFCLOCK, subnet=subnet))
        # The package enables only gpsd.socket; a GPS master needs gpsd.service itself at boot.
        sh("systemctl daemon-reload && systemctl enable --now nmea-feeder && systemctl enable gpsd"
           " && systemctl restart gpsd")
        yield {"subnet": subnet}
    finally:
        labctl("down", "--name", LAB, check=False)
        print(f"[gps-lab] figures: {json.dumps(FIGURES)}")
        assert leftovers() == [], f"left behind: {leftovers()}"


def wait_for(command, predicate, timeout, interval=0.25):
    """Run ``command`` on the host until predicate(stdout) holds; the last stdout on timeout."""
    script = (
        "import subprocess,sys,time\n"
        f"deadline=time.monotonic()+{timeout}\n"
        "while True:\n"
        f"    out=subprocess.run({command!r},shell=True,capture_output=True,text=True).stdout\n"
        f"    if {predicate} or time.monotonic()>deadline: print(out); break\n"
        f"    time.sleep({interval})\n")
    return sh("python3 -", stdin=script, timeout=timeout + 60).stdout


GPSD_PROBE = """\
import json, socket, sys, time
deadline = time.monotonic() + 20
s = socket.create_connection(("127.0.0.1", 2947), timeout=5)
s.sendall(b'?WATCH={"enable":true,"json":true}\\n')
buf, seen = b"", {}
while time.monotonic() < deadline:
    try:
        data = s.recv(65536)
    except socket.timeout:
        continue
    if not data:
        break
    buf += data
    while b"\\n" in buf:
        line, buf = buf.split(b"\\n", 1)
        msg = json.loads(line)
        seen[msg.get("class")] = msg
        if msg.get("class") == "TPV" and msg.get("mode") == 3:
            print(json.dumps(seen)); sys.exit(0)
print(json.dumps(seen)); sys.exit(1)
"""

NTP_QUERY = """\
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(b"\\x23" + 47 * b"\\0", (sys.argv[1], 123))
data = s.recv(512)
print(data[1], data[12:16].rstrip(b"\\0").decode())
"""


@needs_root
def test_feeder_runs_as_an_unprivileged_notify_unit(gps_host):
    assert sh("systemctl is-active nmea-feeder gpsd").stdout.split() == ["active", "active"]
    pid = sh("systemctl show -p MainPID --value nmea-feeder").stdout.strip()
    uid = int(sh(f"ps -o uid= -p {pid}").stdout)
    assert 61184 <= uid <= 65519, uid          # DynamicUser= range: not root, no static account
    assert "serving NMEA on 127.0.0.1:10110" in sh("systemctl show -p StatusText --value nmea-feeder").stdout


@needs_root
def test_gpsd_reads_the_feeder_without_any_client(gps_host):
    # -n: gpsd opens the device at start, not when the first client connects; without it
    # nothing reaches the SHM segment (and chrony) until somebody watches on 2947.
    out = wait_for("ss -Htnp state established '( dport = :10110 )'", "'gpsd' in out", 15)
    assert '"gpsd"' in out, out
    assert "-n tcp://127.0.0.1:10110" in sh("ps -o args= -C gpsd").stdout


@needs_root
def test_gpsd_reports_a_3d_fix_from_the_feeder(gps_host):
    res = sh("python3 -", stdin=GPSD_PROBE, check=False, timeout=60)
    seen = json.loads(res.stdout)
    assert res.returncode == 0, res.stdout
    tpv = seen["TPV"]
    assert tpv["device"] == "tcp://127.0.0.1:10110" and tpv["mode"] == 3
    assert tpv["lat"] == pytest.approx(52.3676, abs=1e-4) and tpv["lon"] == pytest.approx(4.9041, abs=1e-4)
    fix_time = dt.datetime.fromisoformat(tpv["time"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.timezone.utc) - fix_time).total_seconds()) < 5
    assert seen["DEVICES"]["devices"][0]["driver"] == "NMEA0183"


@needs_root
def test_chrony_selects_the_gps_refclock(gps_host):
    started = time.monotonic()
    sh("systemctl restart chrony")
    out = wait_for("chronyc -n -c sources", "any(l.startswith('#,*,GPS,') for l in out.splitlines())", 90)
    took = time.monotonic() - started
    gps = next((l.split(",") for l in out.splitlines() if l.startswith("#,*,GPS,")), None)
    assert gps, f"GPS refclock not selected within 90 s:\n{out}"
    figure("chronyd start to GPS selected (#*), s", took)
    assert took < 60
    assert abs(float(gps[8])) < 0.05, f"NMEA offset {gps[8]} s: feeder late or gpsd slow"
    # The reference (what chronyd serves) follows with the next update of the clock.
    out = wait_for("chronyc -n -c tracking", "out.startswith('47505300,GPS,1,')", 30)
    assert out.startswith("47505300,GPS,1,"), out
    figure("chronyd start to tracking GPS (stratum 1), s", time.monotonic() - started)


@needs_root
def test_serves_stratum_1_gps_time_to_the_lab(gps_host):
    ip = json.loads(labctl("status", "--json", "--name", LAB).stdout)[0]["hosts"][HOST]["ip"]
    stratum, refid = sh(f"python3 - {ip}", stdin=NTP_QUERY).stdout.split()
    assert (stratum, refid) == ("1", "GPS")


@needs_root
def test_gpsd_follows_a_feeder_restart(gps_host):
    # gpsd 3.22 does not reconnect a tcp:// device by itself; the PartOf= drop-in restarts it.
    before = sh("systemctl show -p MainPID --value gpsd").stdout.strip()
    stamp = sh("date -u '+%Y-%m-%d %H:%M:%S' && systemctl restart nmea-feeder").stdout.strip()
    after = sh("systemctl show -p MainPID --value gpsd").stdout.strip()
    assert after not in (before, "0")
    out = wait_for("ss -Htnp state established '( dport = :10110 )'", "'gpsd' in out", 15)
    assert '"gpsd"' in out, out
    # chrony gets fresh samples from the new gpsd (raw refclock samples, `log refclocks`)...
    last = wait_for("tail -n 1 /var/log/chrony/refclocks.log", f"out[:19] > {stamp!r}", 30)
    assert last[:19] > stamp, last
    # ...and keeps GPS selected.
    assert any(l.startswith("#,*,GPS,") for l in sh("chronyc -n -c sources").stdout.splitlines())


@needs_root
def test_feeder_stops_cleanly(gps_host):
    sh("systemctl stop nmea-feeder")
    assert sh("systemctl show -p Result --value nmea-feeder").stdout.strip() == "success"
    assert "nmea-feeder stopped" in sh("journalctl -u nmea-feeder -o cat --no-pager").stdout
    assert sh("systemctl is-active gpsd", check=False).stdout.strip() == "inactive"   # PartOf=
