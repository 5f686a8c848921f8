"""Helpers shared by every scenario's testinfra tests (on PYTHONPATH via .config/molecule)."""
import os
import time

import testinfra
import testinfra.utils.ansible_runner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)


def host(name):
    """A testinfra host of the scenario's inventory."""
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def address(name):
    return RUNNER.get_variables(name)["ansible_host"]


def selected_source(name):
    """(mode, source) of the source chronyd on the host has selected (`*`), or None."""
    for line in host(name).check_output("chronyc -n -c sources").splitlines():
        fields = line.split(",")
        if fields[1] == "*":
            return fields[0], fields[2]
    return None


def wait_for(condition, timeout, what):
    """Poll condition until it returns something true: (that value, seconds it took)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        value = condition()
        if value:
            return value, time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout} s")
