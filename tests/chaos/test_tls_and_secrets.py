"""TLS refusals and secret hygiene, with the real daemon.

TLS: a pool whose certificate names another host, has expired, or signs itself is
refused with a message that says so, and mining carries on at the next pool.

Secrets: a run with a known pool password, MQTT password and REST token, at debug log
level and through connection failures, then a scan of everything the daemon printed or
reports (structlog output, status lines, snapshots, the config's repr) for those strings.
The honest pool's record of ``mining.authorize`` proves the password was really in use.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trustme
from chaos_rig import POOL_DIFFICULTY, PoolEntry, log_events, run_rig
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from live_helpers import Watcher

from stratum_client.config import Config, ListenAddress
from stratum_client.daemon.app import Service
from stratum_client.daemon.telemetry import (
    CgminerService,
    MqttService,
    RestService,
    telemetry_services,
)
from stratum_client.logsetup import configure_logging
from stratum_client.testing.pool import LocalPool

if TYPE_CHECKING:
    from conftest import MosquittoBroker

pytestmark = pytest.mark.chaos

RESUME_BOUND = 20.0

POOL_PASSWORD = "pool-pass-Zq8v3Kx7Lm2N"
MQTT_PASSWORD = "mqtt-pass-R4tY9wQe1Uo6"
REST_TOKEN = "rest-token-Hj5Kd8Ls3Pa0Xc"
SECRETS = (POOL_PASSWORD, MQTT_PASSWORD, REST_TOKEN)


def leaf_context(ca: trustme.CA, *names: str, expired: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    now = dt.datetime.now(dt.UTC)
    if expired:
        cert = ca.issue_cert(
            *names, not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1)
        )
    else:
        cert = ca.issue_cert(*names)
    cert.configure_cert(context)
    return context


def self_signed_context(tmp_path: Path) -> ssl.SSLContext:
    """A leaf for localhost that is its own issuer (no CA anyone trusts)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "self.pem", tmp_path / "self.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong-host", "not valid for 'localhost'"),
        ("expired", "expired"),
        ("self-signed", "self-signed"),
    ],
)
async def test_bad_certificates_are_refused(tmp_path: Path, case: str, expected: str) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = {
        "wrong-host": lambda: leaf_context(ca, "pool.example.org"),
        "expired": lambda: leaf_context(ca, "localhost", expired=True),
        "self-signed": lambda: self_signed_context(tmp_path),
    }[case]()
    async with (
        LocalPool(
            strict=True, host="localhost", ssl_context=context, difficulty=POOL_DIFFICULTY
        ) as bad,
        LocalPool(strict=True, difficulty=POOL_DIFFICULTY) as backup,
    ):
        pools = [
            PoolEntry(bad.url, "tls", extra=f'ca_file = "{ca_file}"'),
            PoolEntry(backup.url, "backup"),
        ]
        async with run_rig(tmp_path, pools) as rig:
            assert await rig.wait_mining(backup, 3) < RESUME_BOUND
            await rig.wait_for(lambda: rig.snapshot().pools[0].failures >= 2, "a retry refused")
            status = rig.snapshot().pools[0]
            await rig.finish([bad, backup])
    assert bad.connections == 0  # no TLS session ever completed
    assert bad.requests == []
    assert "TLS certificate problem: the certificate of localhost" in status.last_error
    assert expected in status.last_error


async def test_good_certificate_is_accepted(tmp_path: Path) -> None:
    """The control case: the same set-up with a valid certificate mines over TLS."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = leaf_context(ca, "localhost")
    async with LocalPool(
        strict=True, host="localhost", ssl_context=context, difficulty=POOL_DIFFICULTY
    ) as tls:
        pools = [PoolEntry(tls.url, "tls", extra=f'ca_file = "{ca_file}"')]
        async with run_rig(tmp_path, pools) as rig:
            assert await rig.wait_mining(tls, 3) < RESUME_BOUND
            await rig.finish([tls])


async def cgminer_replies(port: int) -> list[str]:
    """Every read command, text and JSON, one connection each (as the API wants)."""
    requests = [
        b"version+config+summary+pools+devs+stats",
        b'{"command":"pools"}',
        b'{"command":"config"}',
        b"addpool|stratum+tcp://127.0.0.1:1,u,p",  # from an allowed address: really added
        b"pools",
    ]
    replies = []
    for request in requests:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        replies.append((await reader.read()).decode(errors="replace"))
        writer.close()
    return replies


async def rest_replies(port: int) -> list[str]:
    """The read endpoints, and a write with a wrong token (its refusal must not echo ours)."""
    requests = [
        b"GET /api/system/info HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/system/asic HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/system/statistics HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /api/system/pause HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n"
        b"Content-Length: 0\r\n\r\n",
    ]
    replies = []
    for request in requests:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n"))
        await writer.drain()
        replies.append((await reader.read()).decode(errors="replace"))
        writer.close()
    return replies


async def test_secrets_never_leak(
    tmp_path: Path, captured_logs: io.StringIO, idle_broker: MosquittoBroker
) -> None:
    """Logs, status lines, snapshots, both APIs and every MQTT message, scanned."""
    configure_logging("debug", "json", {}, captured_logs)
    idle_broker.require_password("miner", MQTT_PASSWORD)
    idle_broker.start()
    extra = (
        f'[api]\ncgminer_enabled = true\nrest_enabled = true\nrest_token = "{REST_TOKEN}"\n'
        f'[telemetry.mqtt]\nenabled = true\nport = {idle_broker.port}\nusername = "miner"\n'
        f'password = "{MQTT_PASSWORD}"\ninterval = 0.2\nbase_topic = "chaos"\n'
    )
    companions: list[Service] = []

    def on_free_ports(config: Config) -> list[Service]:
        free = ListenAddress("127.0.0.1", 0)  # the file wants a real port; tests do not
        api = dataclasses.replace(config.api, cgminer_listen=free, rest_listen=free)
        companions.extend(telemetry_services(dataclasses.replace(config, api=api)))
        return companions

    async with (
        LocalPool(strict=True, difficulty=POOL_DIFFICULTY) as pool,
        LocalPool(strict=True, difficulty=POOL_DIFFICULTY) as flaky,
        Watcher(idle_broker.port, "#", username="miner", password=MQTT_PASSWORD) as mqtt,
    ):
        pools = [
            PoolEntry(flaky.url, "flaky", password=POOL_PASSWORD),
            PoolEntry(pool.url, "main", password=POOL_PASSWORD),
        ]
        async with run_rig(tmp_path, pools, extra_toml=extra, services=on_free_ports) as rig:
            cgminer, rest, mqtt_service = companions
            assert isinstance(cgminer, CgminerService)
            assert isinstance(rest, RestService)
            assert isinstance(mqtt_service, MqttService)
            await rig.wait_mining(flaky, 2)
            await flaky.stop()  # failures, failover and error messages go through the logs
            await rig.wait_mining(pool, 2)
            await rig.wait_for(lambda: len(rig.status_lines) >= 2, "status lines")
            await rig.wait_for(lambda: cgminer.ready.is_set() and rest.ready.is_set(), "APIs")
            await rig.wait_for(lambda: mqtt.has("chaos/state"), "MQTT state")
            assert cgminer.server is not None
            assert rest.server is not None
            api = await cgminer_replies(cgminer.server.port)
            web = await rest_replies(rest.server.port)
            outputs = [
                captured_logs.getvalue(),
                "\n".join(rig.status_lines),
                repr(rig.snapshot()),
                repr(rig.daemon.config),
                repr(rig.daemon.manager.statuses()),
                *api,
                *web,
            ]
            await rig.finish([pool, flaky])
        outputs.append(captured_logs.getvalue())
        outputs += [f"{topic} {payload!r}" for topic, payload, _ in mqtt.messages]
    authorizes = [r for r in pool.requests if r.get("method") == "mining.authorize"]
    assert authorizes
    assert all(r["params"][1] == POOL_PASSWORD for r in authorizes)
    events = log_events(captured_logs)
    assert any(e["level"] == "debug" for e in events)
    assert any(e["event"] == "pool connection ended" and e["pool"] == "flaky" for e in events)
    # The scan read real output: pools listed, info served, state and discovery published.
    assert f"127.0.0.1:{pool.port}" in api[0]
    assert "Added pool" in api[3]
    assert '"hashRate"' in web[0]
    assert web[-1].startswith(("HTTP/1.1 401", "HTTP/1.1 403")), web[-1]
    assert any(topic.startswith("homeassistant/") for topic, _, _ in mqtt.messages)
    for text in outputs:
        for secret in SECRETS:
            assert secret not in text
