"""Config loading: schema defaults, every validation path, and secrets never leaking."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_client import config as config_module
from stratum_client.asic.base import DeviceSpec
from stratum_client.config import (
    DEFAULT_CONFIG_PATH,
    Config,
    ListenAddress,
    load_config,
    parse_config,
)
from stratum_client.errors import ConfigError
from stratum_client.secrets import Secret

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.toml"))
SECRET = "hunter2-Very-Secret-Value"

MINIMAL = """
[[pools]]
url = "stratum+tcp://pool.example.com:3333"
user = "bc1qexample.worker"

[[devices]]
driver = "bm1366"
port = "/dev/ttyACM0"
chips = 1
"""


def minimal(**sections: Any) -> dict[str, Any]:
    """A valid config as a dict, with whole sections replaced or added."""
    data: dict[str, Any] = {
        "pools": [{"url": "stratum+tcp://pool.example.com:3333", "user": "u"}],
        "devices": [{"driver": "bm1366", "port": "/dev/ttyACM0", "chips": 1}],
    }
    data.update(sections)
    return data


def pool(**keys: Any) -> dict[str, Any]:
    return {"url": "stratum+tcp://pool.example.com:3333", "user": "u", **keys}


def device(**keys: Any) -> dict[str, Any]:
    return {"driver": "bm1366", "port": "/dev/ttyACM0", "chips": 1, **keys}


def error_for(data: str | dict[str, Any], **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(data, **kwargs)
    return info.value


# --------------------------------------------------------------------------- examples


def test_all_example_configs_are_present() -> None:
    names = {p.name for p in CONFIGS}
    assert {
        "bitaxe-ultra.toml",
        "bitaxe-ultra-201.toml",
        "bitaxe-gamma.toml",
        "gekko-compac-f.toml",
        "demo.toml",
        "config.example.toml",
    } <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_loads(path: Path) -> None:
    config = load_config(path, env={})
    assert config.pools
    assert config.devices
    assert config.source == str(path)


def test_demo_config_is_the_one_the_demo_command_embeds() -> None:
    """configs/demo.toml documents what ``stratum-client demo`` runs: same pool, chains,
    scale and APIs once the per-run pool address and pty paths are filled in."""
    from stratum_client.commands.demo import DIFFICULTY_SCALE, demo_config

    shipped = load_config(ROOT / "configs" / "demo.toml", env={})
    ports = {"bm1366": "/tmp/stratum-client-demo/asic0", "bm1397": "/tmp/stratum-client-demo/asic1"}
    embedded = demo_config("stratum+tcp://127.0.0.1:13333", ports, {"bm1366": 4, "bm1397": 1})
    assert replace(shipped, source=embedded.source) == embedded
    chains = [(d.driver, d.chips, d.port, d.difficulty_scale) for d in shipped.devices]
    assert chains == [
        ("bm1366", 4, ports["bm1366"], DIFFICULTY_SCALE),
        ("bm1397", 1, ports["bm1397"], DIFFICULTY_SCALE),
    ]
    assert shipped.api.cgminer_enabled
    assert shipped.api.cgminer_listen.is_loopback
    assert shipped.api.rest_enabled
    assert shipped.api.rest_listen.is_loopback


def test_hardware_examples_use_the_documented_chips() -> None:
    def only_device(name: str) -> tuple[str, str, float | None]:
        d = load_config(ROOT / "configs" / name, env={}).devices[0]
        return d.driver, d.port, d.frequency_mhz

    # the ASIC UART is the bridge's second port; the first carries bitaxe-raw control
    assert only_device("bitaxe-ultra.toml") == ("bm1366", "/dev/ttyACM1", 485.0)
    assert only_device("bitaxe-gamma.toml") == ("bm1370", "/dev/ttyACM1", 525.0)
    assert only_device("bitaxe-ultra-201.toml") == ("bm1366", "/dev/ttyACM1", 485.0)
    assert only_device("gekko-compac-f.toml") == ("bm1397", "/dev/ttyUSB0", 425.0)
    gamma = load_config(ROOT / "configs" / "bitaxe-gamma.toml", env={})
    assert gamma.pools[0].tls
    assert len(load_config(ROOT / "configs" / "bitaxe-ultra.toml", env={}).pools) == 2


def test_default_path() -> None:
    assert Path("/etc/stratum-client/config.toml") == DEFAULT_CONFIG_PATH


# --------------------------------------------------------------------------- defaults


def test_minimal_config_gets_every_default() -> None:
    config = parse_config(MINIMAL)
    assert config.daemon.log_level == "info"
    assert config.daemon.log_format == "auto"
    assert dict(config.daemon.log_levels) == {}
    assert config.daemon.state_dir == Path("/var/lib/stratum-client")
    assert config.daemon.user_agent.startswith("stratum-client/")
    assert config.daemon.event_loop == "auto"
    (p,) = config.pools
    assert (p.host, p.port, p.tls, p.name) == (
        "pool.example.com",
        3333,
        False,
        "pool.example.com:3333",
    )
    assert p.password.reveal() == "x"
    assert (p.ca_file, p.tls_verify, p.suggest_difficulty) == (None, True, None)
    assert (p.extranonce_subscribe, p.version_rolling) == (False, True)
    assert p.version_bits_form == "xor"
    policy = config.pool_policy
    assert (policy.connect_timeout, policy.silence_timeout) == (10.0, 120.0)
    assert (policy.backoff_initial, policy.backoff_max) == (1.0, 60.0)
    assert (policy.return_to_primary_after, policy.primary_probe_interval) == (120.0, 60.0)
    assert (policy.submit_timeout, policy.pending_share_limit) == (30.0, 1024)
    assert (policy.drain_timeout, policy.reconnect_same_domain_only) == (5.0, True)
    (d,) = config.devices
    assert (d.name, d.frequency_mhz, d.ticket_difficulty) == ("bm1366-0", None, 256.0)
    assert (d.difficulty_scale, d.enabled, dict(d.options)) == (1.0, True, {})
    api = config.api
    assert not api.cgminer_enabled
    assert not api.rest_enabled
    assert api.cgminer_listen == ListenAddress("127.0.0.1", 4028)
    assert api.cgminer_allow == (ipaddress.ip_network("127.0.0.1/32"),)
    assert api.rest_listen == ListenAddress("127.0.0.1", 8080)
    assert api.rest_token is None
    mqtt = config.telemetry.mqtt
    assert (mqtt.enabled, mqtt.host, mqtt.port, mqtt.tls) == (False, "127.0.0.1", 1883, False)
    assert mqtt.base_topic.startswith("stratum-client/")
    assert (mqtt.discovery_prefix, mqtt.interval, mqtt.client_id) == ("homeassistant", 10.0, None)
    assert config.energy.enabled is False
    assert config.energy.signals == ()


def test_dict_input_equals_toml_input() -> None:
    assert parse_config(minimal()) == parse_config(MINIMAL.replace("bc1qexample.worker", "u"))


def test_device_default_names_use_the_index() -> None:
    config = parse_config(minimal(devices=[device(), device(driver="bm1397", port="/dev/ttyUSB0")]))
    assert [d.name for d in config.devices] == ["bm1366-0", "bm1397-1"]


def test_to_spec_carries_every_driver_field() -> None:
    d = parse_config(
        minimal(
            devices=[
                device(
                    chips=4,
                    frequency_mhz=485,
                    ticket_difficulty=512,
                    difficulty_scale=0.5,
                    options={"baudrate": 1_000_000, "nested": {"a": [1, 2]}},
                )
            ]
        )
    ).devices[0]
    spec = d.to_spec()
    assert isinstance(spec, DeviceSpec)
    assert (spec.port, spec.chips, spec.frequency_mhz) == ("/dev/ttyACM0", 4, 485.0)
    assert (spec.ticket_difficulty, spec.difficulty_scale) == (512.0, 0.5)
    assert spec.effective_ticket_difficulty == 256.0
    assert spec.options["baudrate"] == 1_000_000


def test_config_is_deeply_read_only() -> None:
    config = parse_config(minimal(devices=[device(options={"nested": {"a": [1, 2]}})]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.pools[0].user = "other"  # type: ignore[misc]
    options = config.devices[0].options
    with pytest.raises(TypeError):
        options["x"] = 1  # type: ignore[index]
    nested = options["nested"]
    with pytest.raises(TypeError):
        nested["a"] = 3  # type: ignore[index]
    assert nested["a"] == (1, 2)  # type: ignore[index]


def test_energy_table_is_validated_by_its_own_schema() -> None:
    err = error_for(minimal(energy=3))
    assert err.field == "energy"
    assert "not a table" in str(err)
    unknown = error_for(minimal(energy={"anything": True}))
    assert unknown.field.startswith("energy")
    assert "anything" in str(unknown)


# --------------------------------------------------------------------------- pools


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("stratum+tcp://pool.example.com:3333", ("pool.example.com", 3333, False)),
        ("STRATUM+TCP://pool.example.com:3333/", ("pool.example.com", 3333, False)),
        ("stratum+ssl://pool.example.com:443", ("pool.example.com", 443, True)),
        ("stratum+tls://10.0.0.2:65535", ("10.0.0.2", 65535, True)),
        ("stratum+tcp://[2001:db8::1]:3333", ("2001:db8::1", 3333, False)),
        ("  stratum+tcp://a-b_c.lan:1  ", ("a-b_c.lan", 1, False)),
    ],
)
def test_valid_pool_urls(url: str, expected: tuple[str, int, bool]) -> None:
    p = parse_config(minimal(pools=[pool(url=url)])).pools[0]
    assert (p.host, p.port, p.tls) == expected
    assert p.url.startswith(("stratum+tcp://", "stratum+ssl://", "stratum+tls://"))


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://x", "is not a stratum URL"),
        ("pool.example.com:3333", "is not a stratum URL"),
        ("stratum+udp://pool.example.com:3333", "is not a stratum URL"),
        ("stratum+tcp://pool.example.com", "has no port"),
        ("stratum+tcp://pool.example.com:0", "has no port"),
        ("stratum+tcp://pool.example.com:70000", "invalid port"),
        ("stratum+tcp://pool.example.com:abc", "invalid port"),
        ("stratum+tcp://:3333", "no valid host"),
        ("stratum+tcp://bad host:3333", "no valid host"),
        ("stratum+tcp://pool.example.com:3333/path", "path, query or fragment"),
        ("stratum+tcp://pool.example.com:3333?x=1", "path, query or fragment"),
        ("stratum+tcp://worker@pool.example.com:3333", "credentials"),
    ],
)
def test_invalid_pool_urls(url: str, fragment: str) -> None:
    err = error_for(minimal(pools=[pool(), pool(url=url)]))
    assert err.field == "pools[1].url"
    assert fragment in str(err)
    assert "expected" in str(err) or "instead" in str(err)


def test_pool_url_error_message_is_exact() -> None:
    err = error_for(minimal(pools=[pool(url="http://x")]))
    assert str(err) == (
        "pools[0].url: 'http://x' is not a stratum URL; "
        "expected stratum+tcp://, stratum+ssl:// or stratum+tls://HOST:PORT"
    )


def test_password_in_url_is_masked() -> None:
    err = error_for(minimal(pools=[pool(url=f"stratum+tcp://me:{SECRET}@pool.example.com:1")]))
    assert SECRET not in str(err)
    assert "***@pool.example.com" in str(err)


@pytest.mark.parametrize(
    ("keys", "field", "fragment"),
    [
        ({"user": ""}, "pools[0].user", "non-empty"),
        ({"user": 5}, "pools[0].user", "not a string"),
        ({"suggest_difficulty": 0}, "pools[0].suggest_difficulty", "> 0"),
        ({"suggest_difficulty": "big"}, "pools[0].suggest_difficulty", "not a number"),
        ({"version_rolling": "yes"}, "pools[0].version_rolling", "true or false"),
        ({"version_bits_form": "or"}, "pools[0].version_bits_form", '"xor" (rolled ^ job'),
        ({"version_bits_form": 1}, "pools[0].version_bits_form", "not a string"),
        (
            {"version_rolling": False, "version_bits_form": "xor"},
            "pools[0].version_bits_form",
            "only applies when version_rolling = true",
        ),
        ({"tls_verify": False}, "pools[0].tls_verify", "only applies to TLS"),
        ({"name": ""}, "pools[0].name", "non-empty"),
    ],
)
def test_invalid_pool_fields(keys: dict[str, Any], field: str, fragment: str) -> None:
    err = error_for(minimal(pools=[pool(**keys)]))
    assert err.field == field
    assert fragment in str(err)


def test_version_bits_form_is_read_per_pool() -> None:
    config = parse_config(
        minimal(pools=[pool(version_bits_form="Replace"), pool(name="b"), pool(name="c")])
    )
    assert [p.version_bits_form for p in config.pools] == ["replace", "xor", "xor"]


def test_bad_version_bits_form_message_names_both_forms() -> None:
    err = error_for(minimal(pools=[pool(version_bits_form="bip310")]))
    assert str(err) == (
        "pools[0].version_bits_form: 'bip310' is not a version bits form; expected \"xor\" "
        '(rolled ^ job version: public-pool, ckpool, DATUM) or "replace" (rolled & mask, '
        "BIP310's formula: miningcore, the SRI translator)"
    )


def test_missing_user_names_the_key() -> None:
    err = error_for(minimal(pools=[{"url": "stratum+tcp://h:1"}]))
    assert err.field == "pools[0].user"
    assert "is missing" in str(err)


def test_pool_ca_file_must_exist_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    tls = "stratum+ssl://pool.example.com:443"
    p = parse_config(minimal(pools=[pool(url=tls, ca_file="ca.pem")]), base_dir=tmp_path)
    assert p.pools[0].ca_file == tmp_path / "ca.pem"
    err = error_for(minimal(pools=[pool(url=tls, ca_file="nope.pem")]), base_dir=tmp_path)
    assert err.field == "pools[0].ca_file"
    assert "'nope.pem' does not exist" in str(err)


def test_pools_and_devices_are_required() -> None:
    assert error_for({"devices": [device()]}).field == "pools"
    assert error_for({"pools": [pool()]}).field == "devices"
    assert error_for(minimal(pools=[])).field == "pools"
    err = error_for(minimal(pools={"url": "stratum+tcp://h:1", "user": "u"}))
    assert "[[pools]]" in str(err)


def test_duplicate_names_and_ports_are_rejected() -> None:
    err = error_for(minimal(pools=[pool(name="a"), pool(name="a")]))
    assert err.field == "pools[1].name"
    err = error_for(minimal(devices=[device(name="a"), device(name="a", port="/dev/ttyUSB0")]))
    assert err.field == "devices[1].name"
    err = error_for(minimal(devices=[device(), device()]))
    assert err.field == "devices[1].port"
    assert "already used by [0]" in str(err)


# --------------------------------------------------------------------------- devices and policy


@pytest.mark.parametrize(
    ("keys", "field", "fragment"),
    [
        ({"chips": 0}, "devices[0].chips", "from 1 to 256"),
        ({"chips": 257}, "devices[0].chips", "out of range"),
        ({"chips": 1.5}, "devices[0].chips", "not an integer"),
        ({"chips": True}, "devices[0].chips", "not an integer"),
        ({"frequency_mhz": 0.5}, "devices[0].frequency_mhz", ">= 1 and <= 2000"),
        ({"frequency_mhz": 2001}, "devices[0].frequency_mhz", "out of range"),
        ({"frequency_mhz": math.nan}, "devices[0].frequency_mhz", "out of range"),
        ({"ticket_difficulty": 0.5}, "devices[0].ticket_difficulty", ">= 1"),
        ({"difficulty_scale": 0}, "devices[0].difficulty_scale", "> 0 and <= 1"),
        ({"difficulty_scale": 1.5}, "devices[0].difficulty_scale", "out of range"),
        ({"driver": ""}, "devices[0].driver", "driver name"),
        ({"driver": "bm 1366"}, "devices[0].driver", "driver name"),
        ({"name": "a/b"}, "devices[0].name", "letters, digits"),
        ({"port": ""}, "devices[0].port", "non-empty"),
        ({"options": 3}, "devices[0].options", "not a table"),
        ({"enabled": 1}, "devices[0].enabled", "true or false"),
    ],
)
def test_invalid_device_fields(keys: dict[str, Any], field: str, fragment: str) -> None:
    err = error_for(minimal(devices=[device(**keys)]))
    assert err.field == field
    assert fragment in str(err)


def test_missing_device_keys_are_named() -> None:
    for key in ("driver", "port", "chips"):
        data = device()
        del data[key]
        assert error_for(minimal(devices=[data])).field == f"devices[0].{key}"


@pytest.mark.parametrize(
    ("keys", "field"),
    [
        ({"connect_timeout": 0}, "pool_policy.connect_timeout"),
        ({"silence_timeout": -1}, "pool_policy.silence_timeout"),
        ({"drain_timeout": -0.1}, "pool_policy.drain_timeout"),
        ({"pending_share_limit": -1}, "pool_policy.pending_share_limit"),
        ({"backoff_initial": 10, "backoff_max": 5}, "pool_policy.backoff_max"),
        ({"reconnect_same_domain_only": "no"}, "pool_policy.reconnect_same_domain_only"),
    ],
)
def test_invalid_pool_policy(keys: dict[str, Any], field: str) -> None:
    assert error_for(minimal(pool_policy=keys)).field == field


def test_pool_policy_accepts_zero_where_it_means_immediately() -> None:
    policy = parse_config(
        minimal(pool_policy={"drain_timeout": 0, "return_to_primary_after": 0})
    ).pool_policy
    assert (policy.drain_timeout, policy.return_to_primary_after) == (0.0, 0.0)


# --------------------------------------------------------------------------- daemon


def test_daemon_levels_are_normalised_and_validated() -> None:
    config = parse_config(
        minimal(
            daemon={"log_level": "DEBUG", "log_levels": {"drivers": "Warning", "pool": "debug"}}
        )
    )
    assert config.daemon.log_level == "debug"
    assert dict(config.daemon.log_levels) == {"drivers": "warning", "pool": "debug"}
    err = error_for(minimal(daemon={"log_levels": {"drivers": "loud"}}))
    assert err.field == "daemon.log_levels.drivers"
    assert "'loud' is not allowed; expected one of debug, info" in str(err)


@pytest.mark.parametrize(
    ("keys", "field"),
    [
        ({"log_format": "xml"}, "daemon.log_format"),
        ({"state_dir": "relative/dir"}, "daemon.state_dir"),
        ({"user_agent": "bad\nagent"}, "daemon.user_agent"),
        ({"log_levels": "debug"}, "daemon.log_levels"),
        ({"event_loop": "trio"}, "daemon.event_loop"),
    ],
)
def test_invalid_daemon_fields(keys: dict[str, Any], field: str) -> None:
    assert error_for(minimal(daemon=keys)).field == field


# --------------------------------------------------------------------------- unknown keys


@pytest.mark.parametrize(
    ("data", "field", "suggestion"),
    [
        ({**minimal(), "pool": {}}, "pool", "'pools'"),
        (minimal(daemon={"log_lvl": "info"}), "daemon.log_lvl", "'log_level'"),
        (minimal(devices=[device(chip=1)]), "devices[0].chip", "'chips'"),
        (minimal(pools=[pool(pasword="x")]), "pools[0].pasword", "'password'"),
        (minimal(telemetry={"mqtt": {"hots": "h"}}), "telemetry.mqtt.hots", "'host'"),
        (minimal(telemetry={"mqt": {}}), "telemetry.mqt", "'mqtt'"),
        (minimal(api={"rest_tokn": "t"}), "api.rest_tokn", "'rest_token'"),
        (minimal(pool_policy={"backof_max": 3}), "pool_policy.backof_max", "'backoff_max'"),
    ],
)
def test_unknown_keys_suggest_the_nearest(
    data: dict[str, Any], field: str, suggestion: str
) -> None:
    err = error_for(data)
    assert err.field == field
    assert f"unknown key; did you mean {suggestion}?" in str(err)


def test_unknown_key_without_near_match_lists_the_keys() -> None:
    err = error_for(minimal(api={"zzzzzz": 1}))
    assert "expected one of cgminer_enabled" in str(err)


def test_unknown_key_is_reported_before_a_missing_one() -> None:
    err = error_for(minimal(pools=[{"ulr": "stratum+tcp://h:1", "user": "u"}]))
    assert err.field == "pools[0].ulr"


# --------------------------------------------------------------------------- api and mqtt


def test_api_addresses_and_networks() -> None:
    api = parse_config(
        minimal(
            api={
                "cgminer_listen": "[::1]:4029",
                "cgminer_allow": ["10.0.0.0/8", "::1", "192.168.1.7"],
                "rest_enabled": True,
                "rest_listen": "0.0.0.0:8081",
                "rest_token": SECRET,
            }
        )
    ).api
    assert api.cgminer_listen == ListenAddress("::1", 4029)
    assert str(api.cgminer_listen) == "[::1]:4029"
    assert api.cgminer_listen.is_loopback
    assert [str(n) for n in api.cgminer_allow] == ["10.0.0.0/8", "::1/128", "192.168.1.7/32"]
    assert str(api.rest_listen) == "0.0.0.0:8081"
    assert not api.rest_listen.is_loopback
    assert api.rest_token is not None
    assert api.rest_token.reveal() == SECRET


@pytest.mark.parametrize(
    ("keys", "field", "fragment"),
    [
        ({"cgminer_listen": "127.0.0.1"}, "api.cgminer_listen", "no port"),
        ({"cgminer_listen": "127.0.0.1:99999"}, "api.cgminer_listen", "invalid port"),
        ({"rest_listen": "bad host:80"}, "api.rest_listen", "no valid host"),
        ({"cgminer_allow": "127.0.0.1/32"}, "api.cgminer_allow", "not a list"),
        ({"cgminer_allow": ["10.0.0.1/8"]}, "api.cgminer_allow[0]", "host bits set"),
        ({"cgminer_allow": ["nonsense"]}, "api.cgminer_allow[0]", "not a network"),
        ({"cgminer_allow": [8]}, "api.cgminer_allow[0]", "not a string"),
        (
            {"rest_enabled": True, "rest_listen": "0.0.0.0:8080"},
            "api.rest_token",
            "reachable from the network",
        ),
    ],
)
def test_invalid_api_fields(keys: dict[str, Any], field: str, fragment: str) -> None:
    err = error_for(minimal(api=keys))
    assert err.field == field
    assert fragment in str(err)


def test_rest_on_loopback_needs_no_token() -> None:
    api = parse_config(minimal(api={"rest_enabled": True, "rest_listen": "localhost:8080"})).api
    assert api.rest_token is None


def test_mqtt_tls_changes_the_default_port_and_allows_a_ca(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    mqtt = parse_config(
        minimal(telemetry={"mqtt": {"tls": True, "ca_file": str(tmp_path / "ca.pem")}})
    ).telemetry.mqtt
    assert (mqtt.port, mqtt.ca_file) == (8883, tmp_path / "ca.pem")
    explicit = parse_config(minimal(telemetry={"mqtt": {"tls": True, "port": 1884}}))
    assert explicit.telemetry.mqtt.port == 1884


@pytest.mark.parametrize(
    ("keys", "field", "fragment"),
    [
        ({"port": 0}, "telemetry.mqtt.port", "from 1 to 65535"),
        ({"host": "not a host"}, "telemetry.mqtt.host", "host name or IP"),
        ({"base_topic": "miners/#"}, "telemetry.mqtt.base_topic", "without + or #"),
        ({"base_topic": "a//b"}, "telemetry.mqtt.base_topic", "MQTT topic"),
        ({"discovery_prefix": ""}, "telemetry.mqtt.discovery_prefix", "MQTT topic"),
        ({"interval": 0}, "telemetry.mqtt.interval", "> 0"),
        ({"ca_file": "/etc/hosts"}, "telemetry.mqtt.ca_file", "tls = true"),
        ({"password": SECRET}, "telemetry.mqtt.username", "only with one"),
    ],
)
def test_invalid_mqtt_fields(keys: dict[str, Any], field: str, fragment: str) -> None:
    err = error_for(minimal(telemetry={"mqtt": keys}))
    assert err.field == field
    assert fragment in str(err)


def test_telemetry_must_be_a_table() -> None:
    assert error_for(minimal(telemetry=[1])).field == "telemetry"


# --------------------------------------------------------------------------- files


def test_load_config_reads_a_file_and_resolves_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "pool-password").write_text(f"{SECRET}\n")
    path = tmp_path / "config.toml"
    path.write_text(
        MINIMAL.replace(
            'user = "bc1qexample.worker"', 'user = "u"\npassword_file = "pool-password"'
        )
    )
    config = load_config(path, env={})
    assert config.pools[0].password.reveal() == SECRET
    assert config.source == str(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == str(path)
    assert "cannot read config file" in str(info.value)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path)


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[daemon]\nlog_level = "info"\nlog_format = json\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == str(path)
    assert "invalid TOML" in str(info.value)
    assert "line 3" in str(info.value)


def test_binary_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_validation_errors_carry_the_file_as_a_note(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(MINIMAL.replace("chips = 1", "chips = 0"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == "devices[0].chips"
    assert f"in {path}" in getattr(info.value, "__notes__", [])


# --------------------------------------------------------------------------- secrets


def test_secret_never_prints_itself() -> None:
    s = Secret(SECRET)
    assert s.reveal() == SECRET
    assert str(s) == "***"
    assert repr(s) == "'***'"
    assert f"{s}" == "***"
    assert f"{s!r}" == "'***'"
    assert s == Secret(SECRET)
    assert s != Secret("other")
    assert hash(s) == hash(Secret(SECRET))
    assert s != SECRET


def test_password_from_env() -> None:
    config = parse_config(minimal(pools=[pool(password_env="POOL_PW")]), env={"POOL_PW": SECRET})
    assert config.pools[0].password.reveal() == SECRET


def test_password_from_credentials_directory(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "pool-password").write_text(f"  {SECRET}  \n")
    config = parse_config(
        minimal(pools=[pool(password_file="pool-password")]),
        env={"CREDENTIALS_DIRECTORY": str(creds)},
        base_dir=tmp_path,
    )
    assert config.pools[0].password.reveal() == SECRET


def test_secret_file_falls_back_to_the_config_directory(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(SECRET)
    config = parse_config(
        minimal(api={"rest_token_file": "token"}),
        env={"CREDENTIALS_DIRECTORY": str(tmp_path / "missing")},
        base_dir=tmp_path,
    )
    assert config.api.rest_token is not None
    assert config.api.rest_token.reveal() == SECRET


@pytest.mark.parametrize(
    ("keys", "env", "field", "fragment"),
    [
        ({"password_env": "NOPE"}, {}, "pools[0].password_env", "'NOPE' is not set"),
        ({"password_env": "EMPTY"}, {"EMPTY": " "}, "pools[0].password_env", "is empty"),
        ({"password_file": "missing"}, {}, "pools[0].password_file", "cannot read"),
        ({"password_file": "empty"}, {}, "pools[0].password_file", "is empty"),
        ({"password_env": 3}, {}, "pools[0].password_env", "value hidden"),
    ],
)
def test_secret_source_errors(
    tmp_path: Path, keys: dict[str, Any], env: dict[str, str], field: str, fragment: str
) -> None:
    (tmp_path / "empty").write_text("\n")
    err = error_for(minimal(pools=[pool(**keys)]), env=env, base_dir=tmp_path)
    assert err.field == field
    assert fragment in str(err)


def test_only_one_secret_source_may_be_given() -> None:
    err = error_for(minimal(pools=[pool(password=SECRET, password_env="X")]), env={"X": "y"})
    assert err.field == "pools[0].password_env"
    assert "conflicts with password" in str(err)
    err = error_for(minimal(api={"rest_token_env": "A", "rest_token_file": "b"}))
    assert err.field == "api.rest_token_file"


def test_config_secrets_lists_every_secret() -> None:
    config = parse_config(
        minimal(
            pools=[pool(password="p1-secret"), pool(name="b")],
            api={"rest_token": "rest-secret"},
            telemetry={"mqtt": {"username": "u", "password": "mqtt-secret"}},
        )
    )
    assert [s.reveal() for s in config.secrets()] == [
        "p1-secret",
        "x",
        "rest-secret",
        "mqtt-secret",
    ]


def _secret_everywhere(secret: str) -> dict[str, Any]:
    return minimal(
        pools=[pool(password=secret)],
        api={"rest_token": secret},
        telemetry={"mqtt": {"username": "u", "password": secret}},
    )


def test_no_secret_in_the_repr_of_any_config_object(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(SECRET)
    configs: list[Config] = [
        parse_config(_secret_everywhere(SECRET)),
        parse_config(minimal(pools=[pool(password_env="PW")]), env={"PW": SECRET}),
        parse_config(minimal(pools=[pool(password_file="secret")]), base_dir=tmp_path),
    ]
    for config in configs:
        objects: list[object] = [config, config.api, config.telemetry, *config.pools]
        for obj in objects:
            assert SECRET not in repr(obj)
            assert SECRET not in str(obj)
        assert SECRET in [s.reveal() for s in config.secrets()]


@pytest.mark.parametrize(
    "data",
    [
        minimal(pools=[pool(password=SECRET, password_env="X")]),
        minimal(pools=[pool(password=SECRET, password_file="X")]),
        minimal(pools=[pool(pasword=SECRET)]),
        minimal(pools=[pool(password=[SECRET])]),
        minimal(pools=[pool(password={"v": SECRET})]),
        minimal(api={"rest_token": SECRET, "rest_token_env": "X"}),
        minimal(api={"rest_token": 12, "rest_tokenn": SECRET}),
        minimal(telemetry={"mqtt": {"password": SECRET}}),
        minimal(telemetry={"mqtt": {"passwd": SECRET}}),
        minimal(pools=[pool(url=f"stratum+tcp://u:{SECRET}@h:1")]),
        minimal(pools=[pool(url=f"stratum+tcp://{SECRET}@h:1")]),
        {**_secret_everywhere(SECRET), "devices": [device(chips=0)]},
    ],
)
def test_no_secret_in_any_error_message(data: dict[str, Any]) -> None:
    err = error_for(data, env={"X": "other-value"})
    assert SECRET not in str(err)
    assert SECRET not in repr(err)
    assert SECRET not in err.field


@given(
    secret=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="'\\"),
        min_size=0,
        max_size=40,
    )
)
def test_any_secret_stays_hidden(secret: str) -> None:
    marked = f"SeCrEt-{secret}"
    config = parse_config(_secret_everywhere(marked))
    assert marked not in repr(config)
    assert config.pools[0].password.reveal() == marked
    with pytest.raises(ConfigError) as info:
        parse_config(minimal(pools=[pool(password=marked, password_env="E")]), env={"E": "v"})
    assert marked not in str(info.value)


# --------------------------------------------------------------------------- docs stay complete

SCHEMA_KEYS = {
    "daemon": config_module._DAEMON_KEYS,
    "pools": config_module._POOL_KEYS,
    "pool_policy": config_module._POLICY_KEYS,
    "devices": config_module._DEVICE_KEYS,
    "api": config_module._API_KEYS,
    "telemetry.mqtt": config_module._MQTT_KEYS,
}
TABLE_KEYS = {"log_levels", "options"}


@pytest.mark.parametrize("section", SCHEMA_KEYS)
def test_every_key_is_in_the_example_and_the_reference(section: str) -> None:
    example = (ROOT / "configs" / "config.example.toml").read_text()
    reference = (ROOT / "docs" / "configuration.md").read_text()
    for key in SCHEMA_KEYS[section]:
        if key in TABLE_KEYS:
            assert f"[{section}.{key}]" in example
            assert f"[{section}.{key}]" in reference or f"`{key}`" in reference
            continue
        assert re.search(rf"^#? ?{key} = ", example, re.MULTILINE), f"{section}.{key}"
        assert f"`{key}`" in reference, f"{section}.{key}"


def test_submit_block_candidates_below_difficulty_is_read_per_pool() -> None:
    pools = [pool(submit_block_candidates_below_difficulty=False), pool(name="b")]
    config = parse_config(minimal(pools=pools))
    assert [p.submit_block_candidates_below_difficulty for p in config.pools] == [False, True]
    err = error_for(minimal(pools=[pool(submit_block_candidates_below_difficulty="no")]))
    assert err.field == "pools[0].submit_block_candidates_below_difficulty"
