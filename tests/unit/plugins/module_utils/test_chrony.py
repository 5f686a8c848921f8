# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""plugins/module_utils/chrony.py: `chronyc -c tracking` parsing."""

from __future__ import absolute_import, division, print_function

import ast
import pathlib

import pytest

from ansible_collections.scratchbird.cluster.plugins.module_utils import chrony

_PATH = pathlib.Path(chrony.__file__)

SYNCED = (
    "A9FEA97B,169.254.169.123,3,1700000000.123456789,-0.000012345,0.000001000,0.000020000,"
    "-12.345,0.001,0.020,0.000456000,0.000789000,16.0,Normal\n"
)
UNSYNCED = (
    "00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,"
    "1.000000000,1.000000000,0.0,Not synchronised\n"
)
# A clock master serving its own clock ("local stratum 1", no upstream).
LOCAL = "7F7F0101,,1,1700000100.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,0.000000000,0.000010000,64.0,Normal"


def with_fields(**changes):
    fields = SYNCED.strip().split(",")
    for name, value in changes.items():
        fields[chrony.TRACKING_FIELDS.index(name)] = value
    return ",".join(fields)


def test_synchronised_line():
    t = chrony.parse_tracking(SYNCED)
    assert t["reference_id"] == "A9FEA97B"
    assert t["reference_name"] == "169.254.169.123"
    assert t["stratum"] == 3
    assert t["ref_time"] == pytest.approx(1700000000.123456789)
    assert t["offset"] == pytest.approx(-0.000012345)
    assert t["offset_ns"] == -12345
    assert t["last_offset_ns"] == 1000
    assert t["rms_offset_ns"] == 20000
    assert t["frequency_ppm"] == pytest.approx(-12.345)
    assert t["residual_frequency_ppm"] == pytest.approx(0.001)
    assert t["skew_ppm"] == pytest.approx(0.02)
    assert t["root_delay_ns"] == 456000
    assert t["root_dispersion_ns"] == 789000
    assert t["update_interval"] == pytest.approx(16.0)
    assert t["leap_status"] == "Normal"
    assert t["synchronised"] is True
    assert t["local_reference"] is False
    assert all(isinstance(t[k], int) for k in ("offset_ns", "root_delay_ns", "root_dispersion_ns", "rms_offset_ns"))


def test_uncertainty_is_abs_offset_plus_dispersion_plus_half_delay():
    t = chrony.parse_tracking(SYNCED)
    # 12345 + 789000 + 456000 / 2
    assert chrony.uncertainty_ns(t) == 1029345
    assert chrony.uncertainty_ns(SYNCED) == 1029345  # CSV text accepted too
    positive = chrony.parse_tracking(with_fields(offset="0.000012345"))
    assert chrony.uncertainty_ns(positive) == 1029345


def test_unsynchronised_line():
    t = chrony.parse_tracking(UNSYNCED)
    assert t["synchronised"] is False
    assert t["reference_id"] == "00000000"
    assert t["reference_name"] == ""
    assert t["stratum"] == 0
    assert t["leap_status"] == "Not synchronised"
    assert chrony.uncertainty_ns(t) == 1500000000


def test_local_reference_with_stratum_is_synchronised_but_flagged():
    t = chrony.parse_tracking(LOCAL)
    assert t["local_reference"] is True
    assert t["synchronised"] is True
    assert chrony.parse_tracking(LOCAL.replace(",1,", ",0,", 1))["synchronised"] is False
    assert chrony.parse_tracking(LOCAL.replace("Normal", "Not synchronised"))["synchronised"] is False


@pytest.mark.parametrize(
    "leap, synced",
    [("Normal", True), ("Insert second", True), ("Delete second", True), ("Not synchronised", False)],
)
def test_leap_states(leap, synced):
    t = chrony.parse_tracking(with_fields(leap_status=leap))
    assert t["leap_status"] == leap
    assert t["synchronised"] is synced


def test_no_reference_id_is_never_synchronised():
    assert chrony.parse_tracking(with_fields(reference_id="00000000"))["synchronised"] is False


def test_lowercase_hex_bytes_and_surrounding_blank_lines():
    t = chrony.parse_tracking(("\n" + with_fields(reference_id="a9fea97b") + "\n\n").encode())
    assert t["reference_id"] == "A9FEA97B"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("506 Cannot talk to daemon", "14 comma-separated fields, got 1"),
        (SYNCED.strip() + ",extra", "got 15"),
        (SYNCED + SYNCED, "one CSV line"),
        (with_fields(reference_id="XYZ"), "reference_id"),
        (with_fields(reference_id="A9FEA97"), "reference_id"),
        (with_fields(stratum="three"), "stratum"),
        (with_fields(stratum="17"), "stratum"),
        (with_fields(offset="abc"), "offset"),
        (with_fields(offset="nan"), "offset"),
        (with_fields(root_delay="-0.1"), "root_delay"),
        (with_fields(root_dispersion="inf"), "root_dispersion"),
        (with_fields(leap_status=""), "leap_status"),
        (b"\xff\xfe", "ASCII"),
        (None, "must be a string"),
    ],
)
def test_malformed_input_raises_value_error(text, message):
    with pytest.raises(ValueError, match=message):
        chrony.parse_tracking(text)


def test_uncertainty_needs_parsed_tracking():
    with pytest.raises(ValueError, match="parse_tracking"):
        chrony.uncertainty_ns({"offset": 0.0})


def test_module_is_stdlib_only_and_sanity_shaped():
    source = _PATH.read_text()
    assert "from __future__ import absolute_import, division, print_function" in source
    assert "__metaclass__ = type" in source
    assert "# Copyright: scratchbird.cluster contributors" in source
    assert "print(" not in source and "sys.exit" not in source
    # 3.7 grammar: no walrus, no match; Ansible ships module_utils to old targets
    tree = ast.parse(source, feature_version=(3, 7))
    assert " | None" not in source and "-> " not in source  # no annotations at all
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "math"}
