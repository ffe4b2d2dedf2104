"""Finding the line a dotted config key was written on (for error messages).

Line numbers are counted by hand in the texts below.
"""

from __future__ import annotations

from stratum_client.config_lines import key_lines, locate

TEXT = '''\
top = 1
[daemon]
log_level = "info"
  [ daemon . log_levels ]
  pool = "debug"

[[pools]]
url = "a"
note = """
fake = 1
"""
user = "u"

[[pools]]
url = "b"

[[devices]]
driver = "bm1366"
options = { ramp_step_delay = 0 }

[[devices]]
driver = "bm1397"
[devices.options]
baud = 0
'''


def test_headers_and_keys_get_their_lines() -> None:
    lines = key_lines(TEXT)
    assert lines["top"] == 1
    assert lines["daemon"] == 2
    assert lines["daemon.log_level"] == 3
    assert lines["daemon.log_levels"] == 4  # spaces inside the header
    assert lines["daemon.log_levels.pool"] == 5
    assert (lines["pools[0]"], lines["pools[0].url"], lines["pools[0].user"]) == (7, 8, 12)
    assert (lines["pools[1]"], lines["pools[1].url"]) == (14, 15)
    assert lines["devices[0].options"] == 19
    assert lines["devices[1].options"] == 23  # a sub-table of the last [[devices]]
    assert lines["devices[1].options.baud"] == 24


def test_text_inside_a_multiline_string_is_not_a_key() -> None:
    lines = key_lines(TEXT)
    assert lines["pools[0].note"] == 9
    assert "pools[0].fake" not in lines
    assert 10 not in lines.values()


def test_a_key_not_written_points_at_its_nearest_written_parent() -> None:
    lines = key_lines(TEXT)
    assert locate("pools[1].user", lines) == 14  # missing: the [[pools]] header
    assert locate("devices[0].options.ramp_step_delay", lines) == 19  # inside an inline table
    assert locate("api.cgminer_allow[0]", lines) is None  # no [api] table at all
    assert locate("pools", lines) is None
