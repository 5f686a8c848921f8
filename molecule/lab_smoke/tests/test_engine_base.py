"""The engine host base on real lab hosts (systemd-nspawn, Debian bookworm)."""
import pytest
import lab_testinfra


@pytest.fixture(params=lab_testinfra.RUNNER.get_hosts("all"))
def host(request):
    return lab_testinfra.host(request.param)


def test_system_booted_with_systemd(host):
    assert host.run("systemctl is-system-running --wait").stdout.strip() in ("running", "degraded")
    assert host.file("/run/systemd/system").is_directory


def test_engine_user_is_a_system_account_without_login(host):
    user = host.user("dbengine")
    assert user.exists
    assert user.uid < 1000
    assert user.shell == "/usr/sbin/nologin"
    assert user.group == "dbengine"


@pytest.mark.parametrize("path,owner,mode", [
    ("/opt/db", "root", 0o755),
    ("/etc/db", "root", 0o750),
    ("/etc/db/security", "root", 0o750),
    ("/var/lib/db", "dbengine", 0o750),
    ("/var/log/db", "dbengine", 0o750),
])
def test_contract_directories(host, path, owner, mode):
    d = host.file(path)
    assert d.is_directory
    assert d.user == owner
    assert d.group == "dbengine"
    assert d.mode == mode


def test_tier_data_dir_matches_the_hosts_group(host):
    name = host.backend.get_hostname()
    tier = "tx-engine" if name == "smoke-tx" else "olap"
    other = "olap" if tier == "tx-engine" else "tx-engine"
    assert host.file(f"/var/lib/db/{tier}").user == "dbengine"
    assert not host.file(f"/var/lib/db/{other}").exists


def test_lab_host_cannot_set_the_clock(host):
    """Lab hosts never get CAP_SYS_TIME (bit 25); lab chronyd runs with -x."""
    cap_bnd = int(host.file("/proc/1/status").content_string.split("CapBnd:")[1].split()[0], 16)
    assert not cap_bnd & (1 << 25)
    assert host.file("/etc/systemd/system/chrony.service.d/lab-no-clock-control.conf").contains(
        r"chronyd \$DAEMON_OPTS -x")
