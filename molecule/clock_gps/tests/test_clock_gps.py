"""A GPS clock master on a real lab host: gpsd reads NMEA over TCP, chrony selects GPS from
shared memory, and a client syncs from the master."""
import os
import time

import testinfra
import testinfra.utils.ansible_runner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
MASTER = RUNNER.get_hosts("clock_masters")[0]
CLIENT = RUNNER.get_hosts("tx_engines")[0]


def host(name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def selected(name):
    for line in host(name).check_output("chronyc -n -c sources").splitlines():
        fields = line.split(",")
        if fields[1] == "*":
            return fields[0], fields[2]
    return None


def wait_for(condition, timeout, what):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout} s")


def test_gpsd_reads_the_receiver():
    master = host(MASTER)
    assert master.service("gpsd").is_running
    default = master.file("/etc/default/gpsd").content_string
    assert 'DEVICES="tcp://127.0.0.1:10110"' in default
    assert 'START_DAEMON="true"' in default


def test_chrony_selects_gps_from_shared_memory():
    conf = host(MASTER).file("/etc/chrony/chrony.conf").content_string
    assert "(profile gps_server)" in conf
    assert "\nrefclock SHM 0 refid GPS" in conf
    assert "\nlocal stratum 1 orphan\n" in conf
    assert wait_for(lambda: selected(MASTER), 60, "GPS selected") == ("#", "GPS")
    tracking = host(MASTER).check_output("chronyc -n -c tracking").split(",")
    assert tracking[1] == "GPS" and tracking[2] == "1"


def test_client_syncs_from_the_gps_master():
    master_ip = RUNNER.get_variables(MASTER)["ansible_host"]
    assert wait_for(lambda: selected(CLIENT), 60, "client selecting the GPS master") == ("^", master_ip)
    tracking = host(CLIENT).check_output("chronyc -n -c tracking").split(",")
    assert tracking[2] == "2"
