#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: chrony_info
short_description: Read chronyd's tracking, sources and source statistics
version_added: 0.1.0
description:
  - Runs C(chronyc -n -c tracking), C(chronyc -n -c sources) and C(chronyc -n -c sourcestats)
    on the target and returns them parsed, with a summary of the clock's state.
  - The clock uncertainty is computed as |offset| + root dispersion + root delay / 2, in
    nanoseconds (the bound the cluster compares with C(max_acceptable_uncertainty_ns)).
  - Read-only; never reports a change.
  - Fails with a clear message when chronyd is not running (chronyc prints
    C(506 Cannot talk to daemon)). To wait until the clock is synchronised within a bound,
    use M(scratchbird.cluster.clock_sync_wait).
author: scratchbird.cluster contributors (@scratchbird)
options:
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
    details: Only reads; runs the same in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
requirements:
  - chrony (C(chronyc)) on the target, with chronyd running.
notes:
  - Offsets are signed; a positive RV(offset_ns) means the system clock is slow of NTP time
    (as C(chronyc tracking) words it).
  - On a clock master serving its own clock (C(local stratum N), no upstream),
    RV(reference_id) is C(7F7F0101), RV(local_reference) is true, RV(selected_source) is
    null and the uncertainty is 0 because chronyd claims no error for its own clock.
seealso:
  - module: scratchbird.cluster.clock_sync_wait
"""

EXAMPLES = r"""
- name: Read chrony's state
  scratchbird.cluster.chrony_info:
  register: chrony

- name: Show the clock uncertainty
  ansible.builtin.debug:
    msg: >-
      {{ inventory_hostname }}: source {{ chrony.selected_source | default('none', true) }},
      uncertainty {{ chrony.uncertainty_ns }} ns

- name: Fail when a source is a falseticker
  ansible.builtin.assert:
    that: chrony.sources | selectattr('state', 'equalto', 'falseticker') | list | length == 0
    fail_msg: "{{ chrony.sources | selectattr('state', 'equalto', 'falseticker') | map(attribute='name') | list }}"

- name: Use a chronyc outside PATH
  scratchbird.cluster.chrony_info:
    chronyc_path: /opt/chrony/bin/chronyc
"""

RETURN = r"""
synchronised:
  description:
    - chronyd's own view, from C(chronyc tracking) - it has a reference (not C(00000000)),
      a stratum above 0 and a leap status other than C(Not synchronised).
    - True on a clock master serving its own clock (see RV(local_reference)).
  returned: success
  type: bool
  sample: true
selected_source:
  description: Name or address of the source marked C(*) (selected), null when there is none.
  returned: success
  type: str
  sample: 10.213.10.11
reference_id:
  description: Reference id, 8 hex digits; C(00000000) none, C(7F7F0101) the local clock.
  returned: success
  type: str
  sample: 0AD50A0B
reference_name:
  description: Address of the reference (empty for none or the local clock).
  returned: success
  type: str
  sample: 10.213.10.11
local_reference:
  description: True when chronyd serves its own clock (C(local) directive, reference C(7F7F0101)).
  returned: success
  type: bool
  sample: false
stratum:
  description: chronyd's stratum (0 when unsynchronised).
  returned: success
  type: int
  sample: 9
leap_status:
  description: C(Normal), C(Insert second), C(Delete second) or C(Not synchronised).
  returned: success
  type: str
  sample: Normal
offset_ns:
  description: Offset of the system clock from NTP time, ns; positive when the system clock is slow.
  returned: success
  type: int
  sample: 6302
root_delay_ns:
  description: Total network path delay to the stratum-1 source, ns.
  returned: success
  type: int
  sample: 18931
root_dispersion_ns:
  description: Total dispersion accumulated up to the stratum-1 source, ns.
  returned: success
  type: int
  sample: 2760
uncertainty_ns:
  description: Clock uncertainty bound, |offset| + root dispersion + root delay / 2, ns.
  returned: success
  type: int
  sample: 18528
tracking:
  description:
    - The whole C(chronyc -c tracking) report. Seconds as floats, ppm as floats, and
      C(<field>_ns) integers for offset, last_offset, rms_offset, root_delay and
      root_dispersion.
  returned: success
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
  returned: success
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


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.scratchbird.cluster.plugins.module_utils.chrony import ChronycError, collect, find_chronyc


def main():
    module = AnsibleModule(
        argument_spec=dict(chronyc_path=dict(type="path")),
        supports_check_mode=True,
    )
    chronyc = find_chronyc(module)
    try:
        readings = collect(module.run_command, chronyc)
    except ChronycError as exc:
        module.fail_json(msg=str(exc), rc=exc.rc, cmd=exc.command, daemon_unreachable=exc.daemon_unreachable)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **readings)


if __name__ == "__main__":
    main()
