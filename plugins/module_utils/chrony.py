# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Parse chronyc CSV output (``chronyc -c ...``).

This is the single chrony parser of the collection: modules import it as
``ansible_collections.scratchbird.cluster.plugins.module_utils.chrony`` and the
stand-in engine (lab/engine) bundles this very file.  Standard library only,
Python 3.8+.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

# Field order of ``chronyc -c tracking`` (one CSV line).
TRACKING_FIELDS = (
    "reference_id",  # hex, 8 digits
    "reference_name",  # name or address, may be empty
    "stratum",
    "ref_time",  # seconds since the epoch
    "offset",  # system time offset, seconds, signed
    "last_offset",
    "rms_offset",
    "frequency_ppm",
    "residual_frequency_ppm",
    "skew_ppm",
    "root_delay",
    "root_dispersion",
    "update_interval",
    "leap_status",
)

# Reference ids chronyd reports when it has no real reference:
# 00000000 = none selected, 7F7F0101 = its own local clock ("local stratum N").
NO_REFERENCE_ID = "00000000"
LOCAL_REFERENCE_ID = "7F7F0101"

LEAP_NORMAL = "Normal"
LEAP_NOT_SYNCHRONISED = "Not synchronised"
SYNCHRONISED_LEAP_STATUSES = (LEAP_NORMAL, "Insert second", "Delete second")
LEAP_STATUSES = SYNCHRONISED_LEAP_STATUSES + (LEAP_NOT_SYNCHRONISED,)

_NS_PER_S = 1000000000

# Fields given in seconds that also get an ``<name>_ns`` integer.
_SECONDS_WITH_NS = ("offset", "last_offset", "rms_offset", "root_delay", "root_dispersion")
_FLOAT_FIELDS = tuple(f for f in TRACKING_FIELDS
                      if f not in ("reference_id", "reference_name", "stratum", "leap_status"))
_NON_NEGATIVE = ("ref_time", "rms_offset", "skew_ppm", "root_delay", "root_dispersion", "update_interval")


def seconds_to_ns(seconds):
    """Seconds (float) to integer nanoseconds, rounded to nearest."""
    return int(round(seconds * _NS_PER_S))


def _single_line(text):
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("chronyc tracking output is not ASCII")
    if not isinstance(text, str):
        raise ValueError("chronyc tracking output must be a string, not %s" % type(text).__name__)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("chronyc tracking output is empty")
    if len(lines) > 1:
        raise ValueError(
            "chronyc -c tracking output must be one CSV line, got %d lines (first: %r)" % (len(lines), lines[0][:80])
        )
    return lines[0]


def _parse_float(name, raw):
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("chronyc tracking field %s: not a number: %r" % (name, raw))
    if math.isnan(value) or math.isinf(value):
        raise ValueError("chronyc tracking field %s: not a finite number: %r" % (name, raw))
    if name in _NON_NEGATIVE and value < 0:
        raise ValueError("chronyc tracking field %s: must not be negative: %r" % (name, raw))
    return value


def parse_tracking(csv_text):
    """Parse the output of ``chronyc -c tracking``.

    Returns a dict with the raw fields (seconds as float, ppm as float),
    ``<field>_ns`` integers for offset, last_offset, rms_offset, root_delay and
    root_dispersion, ``local_reference`` (chronyd serves its own clock) and
    ``synchronised``.  Raises ValueError on anything that is not exactly one
    well-formed tracking line (for example chronyc's "506 Cannot talk to daemon").
    """
    line = _single_line(csv_text)
    fields = line.split(",")
    if len(fields) != len(TRACKING_FIELDS):
        raise ValueError(
            "chronyc -c tracking output must have %d comma-separated fields, got %d: %r"
            % (len(TRACKING_FIELDS), len(fields), line[:120])
        )
    raw = dict(zip(TRACKING_FIELDS, [f.strip() for f in fields]))

    ref_id = raw["reference_id"].upper()
    if len(ref_id) != 8 or any(c not in "0123456789ABCDEF" for c in ref_id):
        raise ValueError("chronyc tracking field reference_id: expected 8 hex digits, got %r" % raw["reference_id"])

    try:
        stratum = int(raw["stratum"])
    except ValueError:
        raise ValueError("chronyc tracking field stratum: not an integer: %r" % raw["stratum"])
    if stratum < 0 or stratum > 16:
        raise ValueError("chronyc tracking field stratum: out of range 0..16: %d" % stratum)

    leap = raw["leap_status"]
    if not leap:
        raise ValueError("chronyc tracking field leap_status: empty")

    result = {
        "reference_id": ref_id,
        "reference_name": raw["reference_name"],
        "stratum": stratum,
        "leap_status": leap,
    }
    for name in _FLOAT_FIELDS:
        result[name] = _parse_float(name, raw[name])
    for name in _SECONDS_WITH_NS:
        result[name + "_ns"] = seconds_to_ns(result[name])

    result["local_reference"] = ref_id == LOCAL_REFERENCE_ID
    result["synchronised"] = bool(ref_id != NO_REFERENCE_ID and stratum > 0 and leap in SYNCHRONISED_LEAP_STATUSES)
    return result


def uncertainty_ns(tracking):
    """Clock uncertainty bound in ns: |offset| + root dispersion + root delay / 2.

    ``tracking`` is a dict from parse_tracking (or the CSV text itself).
    """
    if not isinstance(tracking, dict):
        tracking = parse_tracking(tracking)
    try:
        seconds = abs(tracking["offset"]) + tracking["root_dispersion"] + tracking["root_delay"] / 2.0
    except KeyError as exc:
        raise ValueError("tracking dict lacks %s (use parse_tracking)" % exc)
    return seconds_to_ns(seconds)
