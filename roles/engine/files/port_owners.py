# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Print (JSON) the listeners on the given ports owned by processes outside the given unit.

Usage: port_owners.py UNIT PORT...   (run on the engine host; reads `ss` and /proc)
"""
import json
import re
import subprocess
import sys


def in_unit(pid, unit):
    try:
        with open("/proc/%s/cgroup" % pid) as handle:
            return ("/" + unit) in handle.read()
    except OSError:
        return False


def main():
    unit, ports = sys.argv[1], {int(p) for p in sys.argv[2:]}
    listing = subprocess.run(["ss", "-Hlnptu"], capture_output=True, text=True, check=True).stdout
    others = []
    for line in listing.splitlines():
        fields = line.split(None, 6)
        if len(fields) < 6 or not fields[4].rpartition(":")[2].isdigit():
            continue
        port = int(fields[4].rpartition(":")[2])
        users = re.findall(r'\("([^"]*)",pid=(\d+)', fields[6] if len(fields) > 6 else "")
        if port in ports and not any(in_unit(pid, unit) for _name, pid in users):
            others.append({"port": port, "proto": fields[0], "process": ",".join(sorted({n for n, _pid in users})) or "?"})
    print(json.dumps(others))


main()
