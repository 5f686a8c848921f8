"""Each chrony profile rendered on a real lab host, parsed by chronyd -p."""
import pytest
from lab_testinfra import RUNNER, assert_role_units_hardened, host, wait_for

CLOUD = "prefer iburst minpoll 4 maxpoll 4"


def config(name):
    h = host(name)
    assert h.run("chronyd -p -f /etc/chrony/chrony.conf").rc == 0
    return [line for line in h.file("/etc/chrony/chrony.conf").content_string.splitlines()
            if line and not line.startswith("#")]


def header(name):
    return host(name).file("/etc/chrony/chrony.conf").content_string.splitlines()[0]


@pytest.mark.parametrize("name", RUNNER.get_hosts("all"))
def test_common_options(name):
    lines = config(name)
    for line in ("driftfile /var/lib/chrony/drift", "rtcsync", "leapsectz right/UTC",
                 "logdir /var/log/chrony", "log measurements statistics tracking"):
        assert line in lines
    assert "Local changes are overwritten" in host(name).file("/etc/chrony/chrony.conf").content_string


def test_aws():
    lines = config("p-aws")
    assert header("p-aws").endswith("(profile aws).")
    assert lines[0] == f"server 169.254.169.123 {CLOUD}"
    assert not [line for line in lines if line.startswith("refclock")]  # no ENA PHC in the lab
    assert "makestep 0.1 3" in lines
    assert host("p-aws").service("chrony").is_running


def test_gcp():
    lines = config("p-gcp")
    assert lines[0] == f"server metadata.google.internal {CLOUD}"
    assert "maxdistance 0.5" in lines and "hwtimestamp *" in lines
    assert host("p-gcp").service("chrony").is_running


def test_azure_renders_without_starting():
    lines = config("p-azure")
    assert lines[0] == "refclock PHC /dev/ptp_hyperv poll 3 dpoll -2 offset 0 stratum 2"
    assert "makestep 1.0 -1" in lines
    assert not host("p-azure").service("chrony").is_running


def test_ptp_renders_units_and_shm():
    lines = config("p-ptp")
    assert lines[0].startswith("refclock SHM 2 refid PTP")
    h = host("p-ptp")
    assert "ptp4l -i eth0 -s -H" in h.file("/etc/systemd/system/ptp4l.service").content_string
    assert "phc2sys -s eth0 -E ntpshm -M 2" in h.file("/etc/systemd/system/phc2sys.service").content_string
    assert h.package("linuxptp").is_installed


def test_every_unit_the_role_installs_scores_at_most_2_5():
    # ptp4l, phc2sys and the clock metrics units, on systemd-analyze security
    units = assert_role_units_hardened(RUNNER.get_hosts("all"), minimum=0)
    assert {("p-ptp", "ptp4l.service"), ("p-ptp", "phc2sys.service")} <= set(units), units


def test_ntp_server_with_nts_pool_orphan_and_acl():
    lines = config("p-ntp")
    assert lines[:2] == ["pool time.example.org iburst maxsources 2 nts", "server time2.example.org iburst nts"]
    for line in ("minsources 2", "local stratum 10 orphan", "allow 10.213.0.0/16", "allow fd00::/8",
                 "deny 10.213.99.0/24", "ntsdumpdir /var/lib/chrony", "clientloglimit 1048576"):
        assert line in lines


def test_auto_falls_back_to_lan_client_off_cloud():
    lines = config("p-auto")
    assert header("p-auto").endswith("(profile lan_client).")
    ntp_ip = RUNNER.get_variables("p-ntp")["ansible_host"]
    assert lines[0] == f"server {ntp_ip} iburst minpoll 0 maxpoll 1 maxsamples 8 prefer"


def test_textfile_metrics_by_default():
    h = host("p-aws")
    assert h.service("chrony-metrics.timer").is_running
    wait_for(lambda: h.file("/var/lib/prometheus/node-exporter/chrony.prom").exists, 30, "chrony.prom written")
    text = h.file("/var/lib/prometheus/node-exporter/chrony.prom").content_string
    assert "chrony_up 1" in text
    assert "chrony_max_uncertainty_nanoseconds 50000000" in text
