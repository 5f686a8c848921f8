"""A GPS clock master on a real lab host: gpsd reads NMEA over TCP, chrony selects GPS from
shared memory, and a client syncs from the master."""
from lab_testinfra import RUNNER, address, host, selected_source, wait_for

MASTER = RUNNER.get_hosts("clock_masters")[0]
CLIENT = RUNNER.get_hosts("tx_engines")[0]


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
    assert wait_for(lambda: selected_source(MASTER), 60, "GPS selected")[0] == ("#", "GPS")
    tracking = host(MASTER).check_output("chronyc -n -c tracking").split(",")
    assert tracking[1] == "GPS" and tracking[2] == "1"


def test_client_syncs_from_the_gps_master():
    assert wait_for(lambda: selected_source(CLIENT), 60, "client selecting the GPS master")[0] == ("^", address(MASTER))
    tracking = host(CLIENT).check_output("chronyc -n -c tracking").split(",")
    assert tracking[2] == "2"
