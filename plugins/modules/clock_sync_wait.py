#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: clock_sync_wait
short_description: Wait until chronyd is synchronised within an uncertainty bound
version_added: 0.1.0
description:
  - Polls C(chronyc -n -c tracking), C(sources) and C(sourcestats) until chronyd is
    synchronised, a source is selected (C(*) in C(chronyc sources)) when
    O(require_selected_source) is true, and the clock uncertainty
    (|offset| + root dispersion + root delay / 2) is at most O(max_uncertainty_ns).
  - Returns the readings of the last poll (the same keys as M(scratchbird.cluster.chrony_info))
    and the time waited; never reports a change.
  - On timeout fails with the last readings - the selected source or none, the uncertainty
    against the bound and each source's state.
  - While chronyd does not answer (C(506 Cannot talk to daemon), for example just after a
    restart) the module keeps polling; it fails at once when chronyc fails otherwise or its
    output cannot be parsed.
author: scratchbird.cluster contributors (@scratchbird)
options:
  max_uncertainty_ns:
    description:
      - Largest acceptable clock uncertainty, in nanoseconds. Must be greater than 0.
      - The default is the cluster's C(max_acceptable_uncertainty_ns), 50 ms.
    type: int
    default: 50000000
  timeout:
    description: Seconds to wait before failing. Must be greater than 0.
    type: float
    default: 120
  poll_interval:
    description: Seconds between two polls. Must be greater than 0.
    type: float
    default: 1
  require_selected_source:
    description:
      - Also wait until a source is selected (C(*) in C(chronyc sources)).
      - Set it to false on a clock master that serves its own clock (C(local stratum N)
        without an upstream source) - chronyd is then synchronised to its local clock
        (reference C(7F7F0101)) but no source is ever selected.
    type: bool
    default: true
  chronyc_path:
    description:
      - Path of the C(chronyc) executable.
      - By default C(chronyc) is searched for on the target's E(PATH) and in the sbin
        directories.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - The wait only reads chronyd's state and changes nothing, so in check mode the module
        runs the same read-only wait as in normal mode - it polls, waits and fails on timeout
        just the same. A check run of a play therefore still waits for the clock.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
requirements:
  - chrony (C(chronyc)) on the target.
notes:
  - The task takes up to O(timeout) seconds plus one poll; keep the connection's and
    the play's timeouts above that, or run it with C(async).
seealso:
  - module: scratchbird.cluster.chrony_info
"""

EXAMPLES = r"""
- name: Wait until the clock is within the cluster bound (50 ms)
  scratchbird.cluster.clock_sync_wait:

- name: Wait up to 5 minutes for 2 ms, polling every 2 s
  scratchbird.cluster.clock_sync_wait:
    max_uncertainty_ns: 2000000
    timeout: 300
    poll_interval: 2
  register: clock

- name: Report how long it took
  ansible.builtin.debug:
    msg: "synchronised to {{ clock.selected_source }} after {{ clock.elapsed }} s, {{ clock.uncertainty_ns }} ns"

- name: Clock master serving its own clock (local stratum, no upstream)
  scratchbird.cluster.clock_sync_wait:
    require_selected_source: false
"""

RETURN = r"""
elapsed:
  description: Seconds waited, from the first poll to the one that met the bound.
  returned: always
  type: float
  sample: 3.012
polls:
  description: Number of polls made.
  returned: always
  type: int
  sample: 4
max_uncertainty_ns:
  description: The bound the uncertainty was compared with.
  returned: always
  type: int
  sample: 50000000
synchronised:
  description:
    - chronyd's own view, from C(chronyc tracking) - it has a reference (not C(00000000)),
      a stratum above 0 and a leap status other than C(Not synchronised).
    - True on a clock master serving its own clock (see RV(local_reference)).
    - This and the other readings are those of the last poll; they are missing when chronyd
      never answered.
  returned: when chronyd answered
  type: bool
  sample: true
selected_source:
  description: Name or address of the source marked C(*) (selected), null when there is none.
  returned: when chronyd answered
  type: str
  sample: 10.213.10.11
reference_id:
  description: Reference id, 8 hex digits; C(00000000) none, C(7F7F0101) the local clock.
  returned: when chronyd answered
  type: str
  sample: 0AD50A0B
reference_name:
  description: Address of the reference (empty for none or the local clock).
  returned: when chronyd answered
  type: str
  sample: 10.213.10.11
local_reference:
  description: True when chronyd serves its own clock (C(local) directive, reference C(7F7F0101)).
  returned: when chronyd answered
  type: bool
  sample: false
stratum:
  description: chronyd's stratum (0 when unsynchronised).
  returned: when chronyd answered
  type: int
  sample: 9
leap_status:
  description: C(Normal), C(Insert second), C(Delete second) or C(Not synchronised).
  returned: when chronyd answered
  type: str
  sample: Normal
offset_ns:
  description: Offset of the system clock from NTP time, ns; positive when the system clock is slow.
  returned: when chronyd answered
  type: int
  sample: 6302
root_delay_ns:
  description: Total network path delay to the stratum-1 source, ns.
  returned: when chronyd answered
  type: int
  sample: 18931
root_dispersion_ns:
  description: Total dispersion accumulated up to the stratum-1 source, ns.
  returned: when chronyd answered
  type: int
  sample: 2760
uncertainty_ns:
  description: Clock uncertainty bound, |offset| + root dispersion + root delay / 2, ns.
  returned: when chronyd answered
  type: int
  sample: 18528
tracking:
  description:
    - The whole C(chronyc -c tracking) report. Seconds as floats, ppm as floats, and
      C(<field>_ns) integers for offset, last_offset, rms_offset, root_delay and
      root_dispersion.
  returned: when chronyd answered
  type: dict
  contains:
    reference_id:
      description: Reference id (8 hex digits).
      type: str
    reference_name:
      description: Reference address or name.
      type: str
    stratum:
      description: Stratum.
      type: int
    ref_time:
      description: Time of the last update, seconds since the epoch.
      type: float
    offset:
      description: System time offset, seconds.
      type: float
    last_offset:
      description: Offset at the last update, seconds.
      type: float
    rms_offset:
      description: Long-term average offset, seconds.
      type: float
    frequency_ppm:
      description: Frequency error of the system clock, ppm.
      type: float
    residual_frequency_ppm:
      description: Residual frequency of the reference, ppm.
      type: float
    skew_ppm:
      description: Estimated error bound of the frequency, ppm.
      type: float
    root_delay:
      description: Root delay, seconds.
      type: float
    root_dispersion:
      description: Root dispersion, seconds.
      type: float
    update_interval:
      description: Interval between the last two clock updates, seconds.
      type: float
    leap_status:
      description: Leap status.
      type: str
    offset_ns:
      description: I(offset) in ns.
      type: int
    last_offset_ns:
      description: I(last_offset) in ns.
      type: int
    rms_offset_ns:
      description: I(rms_offset) in ns.
      type: int
    root_delay_ns:
      description: I(root_delay) in ns.
      type: int
    root_dispersion_ns:
      description: I(root_dispersion) in ns.
      type: int
    local_reference:
      description: Same as RV(local_reference).
      type: bool
    synchronised:
      description: Same as RV(synchronised).
      type: bool
sources:
  description: The C(chronyc -c sources) report, one entry per source, with its C(sourcestats).
  returned: when chronyd answered
  type: list
  elements: dict
  contains:
    name:
      description: Address (chronyc runs with C(-n)), or the refid of a reference clock.
      type: str
      sample: 10.213.10.11
    mode:
      description: C(server) (C(^)), C(peer) (C(=)) or C(refclock) (C(#)).
      type: str
      sample: server
    mode_char:
      description: The mode as chronyc prints it.
      type: str
      sample: "^"
    state:
      description:
        - C(selected) (C(*)), C(combined) (C(+)), C(not_combined) (C(-)), C(unusable)
          (C(?), unreachable or too few samples), C(falseticker) (C(x)) or C(too_variable) (C(~)).
      type: str
      sample: selected
    state_char:
      description: The state as chronyc prints it.
      type: str
      sample: "*"
    selected:
      description: True for the source chronyd synchronises to (C(*)).
      type: bool
      sample: true
    stratum:
      description: Stratum of the source.
      type: int
      sample: 8
    poll:
      description: Polling interval, log2 of seconds.
      type: int
      sample: 6
    reach:
      description: Reachability register as an integer (255 = the last 8 polls answered).
      type: int
      sample: 255
    reach_octal:
      description: Reachability register in octal, as chronyc prints it.
      type: str
      sample: "377"
    last_rx:
      description: Seconds since the last good sample; null when there never was one.
      type: int
      sample: 1
    offset:
      description: Offset of the last sample, adjusted for clock corrections since, seconds.
      type: float
    offset_ns:
      description: I(offset) in ns.
      type: int
      sample: 3563
    measured_offset:
      description: Offset of the last sample as measured, seconds.
      type: float
    measured_offset_ns:
      description: I(measured_offset) in ns.
      type: int
      sample: 3067
    error:
      description: Error bound of the last sample, seconds.
      type: float
    error_ns:
      description: I(error) in ns.
      type: int
      sample: 10456
    stats:
      description: The source's C(chronyc -c sourcestats) line; null if chronyc did not list it.
      type: dict
      contains:
        samples:
          description: Sample points retained (NP).
          type: int
        runs:
          description: Runs of residuals with the same sign (NR).
          type: int
        span:
          description: Seconds between the oldest and the newest sample.
          type: int
        frequency_ppm:
          description: Estimated residual frequency, ppm.
          type: float
        frequency_skew_ppm:
          description: Estimated error bound of the frequency, ppm.
          type: float
        offset:
          description: Estimated offset of the source, seconds.
          type: float
        offset_ns:
          description: I(offset) in ns.
          type: int
        std_dev:
          description: Estimated sample standard deviation, seconds.
          type: float
        std_dev_ns:
          description: I(std_dev) in ns.
          type: int
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.scratchbird.cluster.plugins.module_utils.chrony import ChronycError, collect, find_chronyc


def check_options(module):
    for name in ("max_uncertainty_ns", "timeout", "poll_interval"):
        value = module.params[name]
        if value <= 0:
            module.fail_json(msg="%s must be greater than 0, got %s" % (name, value))


def unmet(readings, max_uncertainty_ns, require_selected_source):
    """What keeps the clock from being ready (empty when it is)."""
    reasons = []
    if not readings["synchronised"]:
        reasons.append("chronyd is not synchronised (reference %s, leap status %s)"
                       % (readings["reference_id"], readings["leap_status"]))
    if require_selected_source and readings["selected_source"] is None:
        if readings["local_reference"]:
            reasons.append("no source is selected: chronyd serves its own clock (local reference 7F7F0101); "
                           "set require_selected_source to false for a clock master without an upstream source")
        else:
            reasons.append("no source is selected")
    if readings["uncertainty_ns"] > max_uncertainty_ns:
        reasons.append("uncertainty %d ns > bound %d ns" % (readings["uncertainty_ns"], max_uncertainty_ns))
    return reasons


def describe(readings, max_uncertainty_ns):
    """The readings of one poll, in one line, for the timeout message."""
    sources = ", ".join(
        "%s %s (reach %s)" % (s["name"], s["state"], s["reach_octal"]) for s in readings["sources"]
    ) or "none"
    return "selected source %s; synchronised %s; reference %s; stratum %d; uncertainty %d ns %s bound %d ns; sources: %s" % (
        readings["selected_source"] or "none",
        "yes" if readings["synchronised"] else "no",
        readings["reference_name"] or readings["reference_id"],
        readings["stratum"],
        readings["uncertainty_ns"],
        "<=" if readings["uncertainty_ns"] <= max_uncertainty_ns else ">",
        max_uncertainty_ns,
        sources,
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            max_uncertainty_ns=dict(type="int", default=50000000),
            timeout=dict(type="float", default=120),
            poll_interval=dict(type="float", default=1),
            require_selected_source=dict(type="bool", default=True),
            chronyc_path=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    check_options(module)
    bound = module.params["max_uncertainty_ns"]
    timeout = module.params["timeout"]
    poll_interval = module.params["poll_interval"]
    require_selected = module.params["require_selected_source"]
    chronyc = find_chronyc(module)

    start = time.monotonic()
    deadline = start + timeout
    polls = 0
    readings = None
    reasons = []
    while True:
        polls += 1
        try:
            readings = collect(module.run_command, chronyc)
        except ChronycError as exc:
            if not exc.daemon_unreachable:
                module.fail_json(msg=str(exc), rc=exc.rc, cmd=exc.command, polls=polls)
            readings = None
            reasons = [str(exc)]
        except ValueError as exc:
            module.fail_json(msg=str(exc), polls=polls)
        else:
            reasons = unmet(readings, bound, require_selected)
        now = time.monotonic()
        result = dict(changed=False, elapsed=round(now - start, 3), polls=polls, max_uncertainty_ns=bound)
        if readings is not None:
            result.update(readings)
        if not reasons:
            module.exit_json(**result)
        if now >= deadline:
            last = describe(readings, bound) if readings is not None else "chronyd never answered"
            module.fail_json(
                msg="clock not synchronised within %d ns after %s s (%d polls): %s. Last readings: %s"
                % (bound, result["elapsed"], polls, "; ".join(reasons), last),
                **result
            )
        time.sleep(min(poll_interval, deadline - now))


if __name__ == "__main__":
    main()
