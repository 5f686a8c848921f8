"""The firewall never fails open: a prober outside the allowed network keeps sending SYNs to a
protected port while the controller changes the rules (the handler reloads the table), and
not one of them is answered; the same prober's SYNs to a port open to it are answered. Then
every unit the roles wrote on the engine hosts scores at most 2.5 on systemd-analyze security."""
import base64
import json

from lab_testinfra import RUNNER, address, assert_role_units_hardened, host, playbook, wait_for

TX = RUNNER.get_hosts("tx_engines")
INGESTION = RUNNER.get_hosts("ingestion_engines")
OLAP = RUNNER.get_hosts("olap_shards")
SERVER, APP = TX  # tx-1's SQL ports are open to tx-2 only (molecule.yml)
PROBER = INGESTION[0]  # inside the cluster CIDR, outside tx-1's application CIDR
DENIED, ALLOWED = 5432, 9090  # SQL (tx-2 only) and metrics (the cluster CIDR)
OUT = "/run/fw-probe.json"

# One non-blocking connect to the denied port every ~2 ms (each socket is closed after 0.5 s,
# before the kernel would resend its SYN: one SYN each), one to the allowed port every 0.1 s.
# A connect that completes or is refused means a SYN got through the firewall (answered).
PROBE = r"""
import errno, json, os, selectors, socket, sys, time
target, denied, allowed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sel = selectors.DefaultSelector()
stats = {"denied_sent": 0, "denied_answered": 0, "allowed_sent": 0, "allowed_answered": 0,
         "errors": 0, "max_gap_s": 0.0, "answered_at": []}
last_sent = next_allowed = next_expire = 0.0
deadline = time.monotonic() + 900
def send(port, now):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex((target, port))
    sel.register(s, selectors.EVENT_WRITE, (port, now))
    stats[("denied" if port == denied else "allowed") + "_sent"] += 1
def done(key):
    sel.unregister(key.fileobj)
    key.fileobj.close()
while not os.path.exists(out + ".stop") and time.monotonic() < deadline:
    now = time.monotonic()
    if last_sent:
        stats["max_gap_s"] = max(stats["max_gap_s"], now - last_sent)
    last_sent = now
    send(denied, now)
    if now >= next_allowed:
        send(allowed, now)
        next_allowed = now + 0.1
    for key, _ in sel.select(0.002):
        port, _sent = key.data
        err = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err in (0, errno.ECONNREFUSED):
            stats[("denied" if port == denied else "allowed") + "_answered"] += 1
            if port == denied:
                stats["answered_at"].append(time.time())
        else:
            stats["errors"] += 1
        done(key)
    if now >= next_expire:
        for key in list(sel.get_map().values()):
            if now - key.data[1] > 0.5:
                done(key)
        next_expire = now + 0.05
    if stats["allowed_answered"] and stats["denied_sent"] >= 100 and not os.path.exists(out + ".ready"):
        open(out + ".ready", "w").close()
with open(out + ".tmp", "w") as f:
    json.dump(stats, f)
os.rename(out + ".tmp", out)
"""


def _start_probe():
    h = host(PROBER)
    h.run("systemctl stop fw-probe.service; systemctl reset-failed fw-probe.service; "
          f"rm -f /run/fw-probe.py {OUT} {OUT}.ready {OUT}.stop")
    script = base64.b64encode(PROBE.encode()).decode()
    h.check_output(f"echo {script} | base64 -d > /run/fw-probe.py")
    h.check_output(f"systemd-run --unit fw-probe -p LimitNOFILE=65536 python3 /run/fw-probe.py "
                   f"{address(SERVER)} {DENIED} {ALLOWED} {OUT}")
    wait_for(lambda: h.file(f"{OUT}.ready").exists, 120, "the probe connects to the allowed port")


def _stop_probe():
    h = host(PROBER)
    h.check_output(f"touch {OUT}.stop")
    wait_for(lambda: h.file(OUT).exists, 60, "the probe's result")
    return json.loads(h.file(OUT).content_string)


def _ruleset():
    return host(SERVER).check_output("nft list table inet scratchbird_tx_engine")


def _converge_with_application_cidrs(cidrs):
    result = playbook("converge.yml", "--limit", SERVER, "-e", json.dumps({"tx_engine_application_cidrs": cidrs}))
    assert "RUNNING HANDLER [scratchbird.cluster.cluster_firewall : Reload firewall table]" in result.stdout
    return result


def test_a_rule_change_never_leaves_the_port_open():
    app = f"{address(APP)}/32"
    extra = "192.0.2.7/32"  # TEST-NET-1: a changed rule set that still excludes the prober
    before = host(SERVER).check_output("systemctl show -p InvocationID --value scratchbird-nft@scratchbird_tx_engine")
    _start_probe()
    try:
        _converge_with_application_cidrs([app, extra])
        assert extra.split("/")[0] in _ruleset()
        _converge_with_application_cidrs([app])
    finally:
        stats = _stop_probe()
        playbook("converge.yml", "--limit", SERVER)
    print(f"{PROBER} -> {SERVER}: {stats['denied_sent']} SYNs to {DENIED} (largest gap {stats['max_gap_s']:.3f} s), "
          f"{stats['denied_answered']} answered; {stats['allowed_sent']} to {ALLOWED}, "
          f"{stats['allowed_answered']} answered; {stats['errors']} other errors")
    assert "192.0.2.7" not in _ruleset()
    assert stats["allowed_answered"] > 0, "the probe never reached the open port: it proves nothing"
    assert stats["denied_answered"] == 0, f"the protected port answered during the rule change at {stats['answered_at']}"
    # The table was reloaded in place, not restarted (ExecStop would have deleted it).
    after = host(SERVER).check_output("systemctl show -p InvocationID --value scratchbird-nft@scratchbird_tx_engine")
    assert after == before


def test_every_unit_the_roles_wrote_scores_at_most_2_5():
    # The engine units and each host's firewall table loader (scratchbird-nft@<table>).
    units = assert_role_units_hardened(TX + INGESTION + OLAP, minimum=2)
    assert any(unit.startswith("scratchbird-nft@") for (_h, unit) in units)
