"""The cgminer API's TCP shell: one request per connection, one reply, then close.

Everything protocol-shaped lives in :mod:`stratum_client.api.cgminer`; this module only
bounds what a client can cost (request size, read deadline, per-IP rate, concurrent
connections) and decides who is privileged: a client whose address is inside one of the
``cgminer_allow`` networks may run state-changing commands, everyone else reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog

from stratum_client.api import cgminer
from stratum_client.api.cgminer import Action, ActionKind, AscOption, RateLimiter, Reply
from stratum_client.api.model import (
    ControlOutcome,
    MinerControl,
    StateProvider,
    call_control,
)
from stratum_client.api.server import Admission, ApiServer, peer_host
from stratum_client.config import IPNetwork, ListenAddress

__all__ = ["CgminerServer", "client_allowed"]

log = structlog.get_logger(__name__)


def client_allowed(peer: str, allow: Sequence[IPNetwork]) -> bool:
    """Whether ``peer`` (an IP literal) lies in an allow-listed network.

    IPv4-mapped IPv6 peers (``::ffff:10.0.0.5``, from a dual-stack socket) are judged
    by their IPv4 address; an unparsable peer is never privileged.
    """
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in allow)


class CgminerServer(ApiServer):
    """Serves the cgminer API on ``listen`` until :meth:`stop` (or ``async with``)."""

    what = "cgminer API"

    def __init__(
        self,
        listen: ListenAddress,
        allow: Sequence[IPNetwork],
        state_provider: StateProvider,
        control: MinerControl,
        *,
        limiter: RateLimiter | None = None,
        read_timeout: float = 5.0,
        control_timeout: float = 60.0,
        max_connections: int = 16,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        option: str = "[api] cgminer_listen",
    ) -> None:
        super().__init__(
            listen, option=option, limiter=limiter, max_connections=max_connections, clock=clock
        )
        self.allow = tuple(allow)
        self.state_provider = state_provider
        self.control = control
        self.read_timeout = read_timeout
        self.control_timeout = control_timeout
        self._wall = wall_clock

    def _protocol_factory(self) -> Callable[[], asyncio.BaseProtocol]:
        loop = asyncio.get_running_loop()

        def factory() -> asyncio.BaseProtocol:
            reader = asyncio.StreamReader(limit=cgminer.MAX_REQUEST * 2, loop=loop)
            return asyncio.StreamReaderProtocol(reader, self._serve, loop=loop)

        return factory

    async def _started(self) -> None:
        if not self.listen.is_loopback:
            log.warning("cgminer API reachable from the network", listen=str(self.listen))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self.track(handler)
        peer = peer_host(writer.transport)
        admission = self.admit(peer)
        if admission is Admission.BUSY:
            log.warning("cgminer API busy; connection dropped", client=peer)
            await _close(writer)
            return
        try:
            await self._exchange(reader, writer, peer, admission)
        except (ConnectionError, TimeoutError) as exc:
            log.debug("cgminer API client went away", client=peer, error=type(exc).__name__)
        except Exception:  # one bad exchange must never take the listener down
            log.exception("cgminer API request failed", client=peer)
        finally:
            self.release(admission)
            await _close(writer)

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
        admission: Admission,
    ) -> None:
        data = await self._read(reader)  # even when refusing: unread bytes would reset
        when = int(self._wall())
        try:
            state = self.state_provider()
        except Exception:  # answer, and keep serving
            log.exception("cgminer API could not read the miner state")
            failed = cgminer.error_reply(
                cgminer.Code.INVCMD, "Internal error", when=when, version=""
            )
            await self._write(writer, failed, when, "")
            return
        if admission is Admission.LIMITED:
            reply: Reply | Action = cgminer.error_reply(
                cgminer.Code.INVCMD, "Rate limit exceeded", when=when, version=state.version
            )
        else:
            privileged = client_allowed(peer, self.allow)
            reply = cgminer.handle_bytes(data, state, privileged=privileged, when=when)
        if isinstance(reply, Action):
            reply = await self._act(reply, peer, when, state.version)
        elif cgminer.denied(reply):
            log.warning("cgminer privileged command denied", client=peer)
        await self._write(writer, reply, when, state.version)

    async def _read(self, reader: asyncio.StreamReader) -> bytes:
        """Up to one byte past the limit (so oversize is detectable), within the deadline."""
        buffer = bytearray()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.read_timeout):
                while not cgminer.request_complete(bytes(buffer)):
                    chunk = await reader.read(cgminer.MAX_REQUEST + 1 - len(buffer))
                    buffer += chunk
                    if not chunk or len(buffer) > cgminer.MAX_REQUEST:
                        break
        return bytes(buffer)

    async def _act(self, action: Action, peer: str, when: int, version: str) -> Reply:
        log.info("cgminer privileged command", command=action.kind.value, client=peer)
        if action.replies_first:
            self.track(asyncio.create_task(self._run(action), name=f"cgminer-{action.kind.value}"))
            return cgminer.action_reply(action, ControlOutcome(True), when=when, version=version)
        outcome = await self._run(action)
        if not outcome.ok:
            log.warning("cgminer command failed", command=action.kind.value, error=outcome.error)
        return cgminer.action_reply(action, outcome, when=when, version=version)

    async def _run(self, action: Action) -> ControlOutcome:
        if action.replies_first:
            await asyncio.sleep(0.05)  # let the reply reach the client first
        return await call_control(
            _control_call(self.control, action),
            within=self.control_timeout,
            what=action.kind.value,
        )

    async def _write(
        self, writer: asyncio.StreamWriter, reply: Reply, when: int, version: str
    ) -> None:
        data = reply.encode()
        if len(data) > cgminer.MAX_REPLY:
            log.error("cgminer reply too large; sent an error instead", size=len(data))
            data = cgminer.error_reply(
                cgminer.Code.INVCMD, "Reply too large", when=when, version=version
            ).encode()
        writer.write(data)
        async with asyncio.timeout(self.read_timeout):
            await writer.drain()


def _control_call(
    control: MinerControl, action: Action
) -> Callable[[], Awaitable[float | int | None]]:
    """The ``MinerControl`` coroutine factory for one action."""

    async def call() -> float | int | None:
        match action.kind:
            case ActionKind.SWITCH_POOL:
                await control.switch_pool(action.index)
            case ActionKind.ENABLE_POOL | ActionKind.DISABLE_POOL:
                await control.enable_pool(action.index, action.kind is ActionKind.ENABLE_POOL)
            case ActionKind.ADD_POOL:
                assert action.password is not None
                return await control.add_pool(action.target, action.user, action.password)
            case ActionKind.ASC_SET:
                return await _asc_set(control, action)
            case ActionKind.RESTART:
                await control.restart()
            case ActionKind.QUIT:
                await control.quit()
        return None

    return call


async def _asc_set(control: MinerControl, action: Action) -> float | None:
    """``ascset``'s option through the same ``MinerControl`` calls as REST and MQTT."""
    match action.option:
        case AscOption.FAN:
            return await control.set_fan(action.target, action.value)
        case AscOption.VOLTAGE:
            assert action.value is not None
            return await control.set_core_voltage(action.target, action.value)
        case _:
            assert action.value is not None
            return await control.set_frequency(action.target, action.value)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, TimeoutError, OSError):
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
