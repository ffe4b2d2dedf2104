"""Logging setup: renderers, per-component levels, redaction and the stdlib bridge."""

from __future__ import annotations

import ast
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from stratum_client.errors import InputError
from stratum_client.logsetup import (
    COMPONENT_LOGGERS,
    ComponentLevelFilter,
    add_logger_name,
    configure_logging,
    redact,
    register_secret,
    reset_logging,
)
from stratum_client.secrets import Secret

ROOT = Path(__file__).resolve().parent.parent
SECRET = "correct-horse-battery-staple"


class TTYStream(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    reset_logging()
    yield
    reset_logging()


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def configured(
    level: str = "info", fmt: str = "auto", stream: io.StringIO | None = None, **levels: str
) -> io.StringIO:
    out = io.StringIO() if stream is None else stream
    configure_logging(level, fmt, levels, out)
    return out


# --------------------------------------------------------------------------- renderers


def test_json_lines_when_not_a_tty() -> None:
    out = configured()
    structlog.get_logger("stratum_client.pool.client").info("connected", pool="main", port=3333)
    (line,) = json_lines(out)
    assert line["event"] == "connected"
    assert line["level"] == "info"
    assert line["logger"] == "stratum_client.pool.client"
    assert (line["pool"], line["port"]) == ("main", 3333)
    assert line["timestamp"].endswith("Z")


def test_bound_and_context_variables_are_included() -> None:
    out = configured()
    with structlog.contextvars.bound_contextvars(chain="asic0"):
        structlog.get_logger("stratum_client_bm13xx.x").bind(chip=3).warning("crc error")
    (line,) = json_lines(out)
    assert (line["chain"], line["chip"], line["level"]) == ("asic0", 3, "warning")


def test_console_format_on_a_plain_stream_has_no_colors() -> None:
    out = configured(fmt="console")
    structlog.get_logger("x").info("hello console", chip=1)
    text = out.getvalue()
    assert "hello console" in text
    assert "chip=1" in text
    assert "\x1b[" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_auto_on_a_tty_renders_console_with_colors() -> None:
    out = configured(stream=TTYStream())
    structlog.get_logger("x").info("hello tty")
    assert "hello tty" in out.getvalue()
    assert "\x1b[" in out.getvalue()


def test_json_forced_on_a_tty() -> None:
    out = configured(fmt="json", stream=TTYStream())
    structlog.get_logger("x").info("forced")
    assert json_lines(out)[0]["event"] == "forced"


def test_exceptions_are_rendered_as_text() -> None:
    out = configured()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        structlog.get_logger("x").exception("failed")
    (line,) = json_lines(out)
    assert line["level"] == "error"
    assert "RuntimeError: boom" in line["exception"]


def test_console_exceptions_are_rendered() -> None:
    out = configured(fmt="console")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        structlog.get_logger("x").exception("failed")
    assert "RuntimeError: boom" in out.getvalue()


# --------------------------------------------------------------------------- levels


def test_global_level_filters() -> None:
    out = configured(level="warning")
    log = structlog.get_logger("stratum_client.pool")
    log.info("dropped")
    log.warning("kept")
    assert [e["event"] for e in json_lines(out)] == ["kept"]


def test_component_can_be_more_verbose_than_the_default() -> None:
    out = configured(level="warning", drivers="debug")
    structlog.get_logger("stratum_client_bm13xx.driver").debug("frame", n=1)
    structlog.get_logger("stratum_client.asic").debug("top")
    structlog.get_logger("stratum_client.pool.client").info("not drivers")
    structlog.get_logger("stratum_client.asicx").debug("prefix is not a component")
    assert [e["event"] for e in json_lines(out)] == ["frame", "top"]


def test_component_can_be_quieter_than_the_default() -> None:
    out = configured(level="debug", pool="error")
    structlog.get_logger("stratum_client.pool.failover").warning("quiet pool")
    structlog.get_logger("stratum_client.pool").error("loud pool")
    structlog.get_logger("stratum_client.daemon.dispatcher").debug("other")
    assert [e["event"] for e in json_lines(out)] == ["loud pool", "other"]


def test_reconfiguring_changes_existing_module_loggers() -> None:
    module_log = structlog.get_logger("stratum_client.telemetry.mqtt")
    out = configured(level="info")
    module_log.debug("first")
    configure_logging("info", "auto", {"telemetry": "debug"}, out)
    module_log.debug("second")
    assert [e["event"] for e in json_lines(out)] == ["second"]


def test_longest_prefix_wins() -> None:
    flt = ComponentLevelFilter(
        logging.INFO, {"stratum_client.daemon": logging.ERROR, "stratum_client.daemon.x": 10}
    )
    assert flt.threshold("stratum_client.daemon.x.y") == logging.DEBUG
    assert flt.threshold("stratum_client.daemon.y") == logging.ERROR
    assert flt.threshold("stratum_client.daemonx") == logging.INFO
    assert flt.threshold("") == logging.INFO


def test_component_filter_with_capture_logs() -> None:
    configured(level="debug")
    flt = ComponentLevelFilter(logging.INFO, {"stratum_client_bm13xx": logging.DEBUG})
    with capture_logs(processors=[add_logger_name, flt]) as logs:
        structlog.get_logger("stratum_client_bm13xx.emulated").debug("kept", chip=0)
        structlog.get_logger("stratum_client.api").debug("dropped")
        structlog.get_logger("stratum_client.api").info("kept too")
    assert [(e["event"], e["logger"]) for e in logs] == [
        ("kept", "stratum_client_bm13xx.emulated"),
        ("kept too", "stratum_client.api"),
    ]


def test_every_component_maps_to_prefixes() -> None:
    expected = {"pool", "session", "dispatcher", "drivers", "api", "telemetry", "energy"}
    assert expected <= set(COMPONENT_LOGGERS)
    assert COMPONENT_LOGGERS["drivers"] == ("stratum_client.asic", "stratum_client_bm13xx")
    assert COMPONENT_LOGGERS["dispatcher"] == ("stratum_client.daemon.dispatcher",)


@pytest.mark.parametrize(
    ("level", "fmt", "levels", "field"),
    [
        ("loud", "auto", {}, "log_level"),
        ("info", "xml", {}, "log_format"),
        ("info", "auto", {"nope": "debug"}, "nope"),
        ("info", "auto", {"pool": "loud"}, "pool"),
    ],
)
def test_invalid_settings_are_input_errors(
    level: str, fmt: str, levels: dict[str, str], field: str
) -> None:
    with pytest.raises(InputError) as info:
        configure_logging(level, fmt, levels, io.StringIO())
    assert info.value.field == field


# --------------------------------------------------------------------------- redaction


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_sensitive_keys_are_masked(fmt: str) -> None:
    out = configured(fmt=fmt)
    structlog.get_logger("x").info(
        "login",
        password="pw-value-1",
        pool_password="pw-value-2",
        rest_token="pw-value-3",
        extra={"passwd": "pw-value-4", "api_key": "pw-value-5"},
        user="visible-user",
    )
    text = out.getvalue()
    assert "pw-value" not in text
    assert "visible-user" in text
    assert "***" in text


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_registered_secret_is_scrubbed_everywhere(fmt: str) -> None:
    out = configured(fmt=fmt)
    register_secret(Secret(SECRET))
    log = structlog.get_logger("x")
    log.info(f"authorizing with {SECRET}")
    log.info("nested", values=[f"a{SECRET}b", (SECRET,)], data={"k": {"deep": SECRET}})
    log.info("object", obj=b"raw " + SECRET.encode())
    try:
        raise ValueError(f"pool said: bad password {SECRET}")
    except ValueError:
        log.exception("login failed")
    text = out.getvalue()
    assert SECRET not in text
    assert text.count("***") >= 5
    assert "authorizing with ***" in text


def test_secret_objects_log_masked() -> None:
    out = configured()
    structlog.get_logger("x").info("config", secret_holder=Secret(SECRET))
    assert SECRET not in out.getvalue()


def test_short_secrets_are_not_scrubbed_by_value() -> None:
    out = configured()
    register_secret("x")
    structlog.get_logger("x").info("max extranonce")
    assert json_lines(out)[0]["event"] == "max extranonce"


def test_redact_processor_directly() -> None:
    register_secret("s3cr3t-value")
    event = {"event": "has s3cr3t-value inside", "token": None, "n": 5, "secret": 7}
    result = redact(None, "info", event)
    assert result == {"event": "has *** inside", "token": None, "n": 5, "secret": "***"}


def test_reset_forgets_secrets() -> None:
    register_secret(SECRET)
    reset_logging()
    out = configured()
    structlog.get_logger("x").info(SECRET)
    assert SECRET in out.getvalue()


# --------------------------------------------------------------------------- stdlib bridge


def test_stdlib_records_go_through_the_same_pipeline() -> None:
    out = configured()
    register_secret(SECRET)
    logging.getLogger("aiomqtt").warning("broker refused %s", SECRET)
    logging.getLogger("asyncio").debug("below the level")
    (line,) = json_lines(out)
    assert line["logger"] == "aiomqtt"
    assert line["level"] == "warning"
    assert line["event"] == "broker refused ***"


def test_stdlib_bridge_is_installed_once_and_removed_by_reset() -> None:
    def bridges() -> int:
        return sum(type(h).__name__ == "_StdlibBridge" for h in logging.getLogger().handlers)

    configured()
    configured()
    assert bridges() == 1
    reset_logging()
    assert bridges() == 0


def test_stdlib_capture_can_be_disabled() -> None:
    out = io.StringIO()
    configure_logging("info", "json", {}, out, capture_stdlib=False)
    logging.getLogger("aiomqtt").warning("not bridged")
    assert out.getvalue() == ""


# --------------------------------------------------------------------------- the rule


def _calls_structlog_configure(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "configure"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "structlog"
        for node in ast.walk(tree)
    )


def test_only_logsetup_configures_structlog() -> None:
    modules = [*(ROOT / "stratum_client").rglob("*.py"), *(ROOT / "drivers").rglob("*.py")]
    offenders = [
        p.relative_to(ROOT).as_posix()
        for p in modules
        if p.name != "logsetup.py" and _calls_structlog_configure(p)
    ]
    assert offenders == []
