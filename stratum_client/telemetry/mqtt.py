"""The MQTT shell: publish state and discovery, take commands, survive any broker.

Mining must never wait for the broker, so nothing the daemon calls here does I/O:
:meth:`MqttTelemetry.push` drops a snapshot into a one-slot mailbox (the newest state
wins; nothing queues up while the broker is away) and a background task publishes it,
or a fresh ``state_provider()`` snapshot every ``interval`` seconds. A broker that is
down, slow or restarting only delays telemetry: every publish has a deadline, the
client's outgoing queue is bounded, and the session is rebuilt with exponential
backoff and jitter (so a fleet does not reconnect in lock-step).

Commands run in their own task that outlives broker sessions, so a broker restart
never cancels a frequency ramp half-way; their results are kept (bounded) and sent when
a session is up. Retained command messages are ignored: replaying a stale "pause"
after every reconnect would be a trap.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import aiomqtt
import structlog

from stratum_client import mqtt_session
from stratum_client.api.model import (
    ControlOutcome,
    MinerControl,
    MinerState,
    StateProvider,
    call_control,
)
from stratum_client.config import MqttConfig
from stratum_client.telemetry import commands, discovery, topics
from stratum_client.telemetry.commands import Command, CommandError
from stratum_client.telemetry.topics import Message, Topics

__all__ = ["LatestSlot", "MqttTelemetry"]

log = structlog.get_logger(__name__)

T = TypeVar("T")
COMMAND_QUEUE = 16
RESULT_BACKLOG = 32
RESULT_UNITS = {"set_frequency": "mhz", "set_fan": "percent", "set_core_voltage": "volts"}
"""The ``result`` field of a command that returns what it set (``percent`` None: auto)."""


class LatestSlot(Generic[T]):
    """A mailbox of one: a put replaces what is there, a get waits (with a deadline)."""

    def __init__(self) -> None:
        self._value: T | None = None
        self._ready = asyncio.Event()

    def put(self, value: T) -> None:
        self._value = value
        self._ready.set()

    async def get(self, within: float) -> T | None:
        """The newest value, or ``None`` if none arrived within ``within`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._ready.wait()
        value, self._value = self._value, None
        self._ready.clear()
        return value


class MqttTelemetry:
    """Publishes the daemon to ``config``'s broker; run :meth:`run` as a task."""

    def __init__(
        self,
        config: MqttConfig,
        state_provider: StateProvider,
        control: MinerControl,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        keepalive: int = 30,
        publish_timeout: float = 5.0,
        command_timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.state_provider = state_provider
        self.control = control
        self.topics = Topics(config.base_topic)
        self.keepalive = keepalive
        self.publish_timeout = publish_timeout
        self.command_timeout = command_timeout
        self._clock = clock
        self.link = mqtt_session.Reconnecting("MQTT broker", backoff_initial, backoff_max, jitter)
        self.connected = self.link.connected
        self.rounds = 0
        """State publish rounds completed (for health checks and tests)."""
        self._slot: LatestSlot[MinerState] = LatestSlot()
        self._commands: asyncio.Queue[Command | CommandError] = asyncio.Queue(COMMAND_QUEUE)
        self._results: deque[Message] = deque(maxlen=RESULT_BACKLOG)
        self._results_ready = asyncio.Event()
        self._energy = topics.EnergyMeter()
        self._previous: MinerState | None = None
        self._discovered: dict[str, bytes] = {}
        self._config_sent: bytes | None = None

    def push(self, state: MinerState) -> None:
        """Publish this snapshot soon (replacing any not yet sent); never blocks."""
        self._slot.put(state)

    async def run(self) -> None:
        """Keep a session up until cancelled; commands keep running across sessions."""
        executor = asyncio.create_task(self._execute_commands(), name="mqtt-commands")
        try:
            await self.link.run(self._session)
        finally:
            executor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await executor

    @property
    def connections(self) -> int:
        """Sessions established so far (1 + reconnects)."""
        return self.link.connections

    # ------------------------------------------------------------------ session

    def _client(self) -> aiomqtt.Client:
        return mqtt_session.make_client(
            self.config.broker(),
            keepalive=self.keepalive,
            will=aiomqtt.Will(self.topics.availability, topics.OFFLINE, qos=1, retain=True),
            max_queued_outgoing_messages=1000,
        )

    async def _session(self) -> None:
        async with mqtt_session.session(self._client()) as client:
            try:
                await self._open(client)
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._publish_states(client), name="mqtt-state")
                    group.create_task(self._send_results(client), name="mqtt-results")
                    group.create_task(self._listen(client), name="mqtt-listen")
            except asyncio.CancelledError:
                await self._say_goodbye(client)
                raise

    async def _open(self, client: aiomqtt.Client) -> None:
        await self._publish(client, Message(self.topics.availability, topics.ONLINE, True, 1))
        subscriptions = (self.topics.commands, self._ha_status)
        await mqtt_session.subscribe(client, subscriptions, qos=1, within=self.publish_timeout)
        self._discovered_reset()
        self.link.established()
        log.info("MQTT telemetry connected", broker=f"{self.config.host}:{self.config.port}")

    async def _say_goodbye(self, client: aiomqtt.Client) -> None:
        """A clean disconnect does not fire the last will, so say "offline" ourselves."""
        with contextlib.suppress(aiomqtt.MqttError):
            await mqtt_session.publish(
                client, self.topics.availability, topics.OFFLINE, qos=1, retain=True, within=1.0
            )

    @property
    def _ha_status(self) -> str:
        return f"{self.config.discovery_prefix}/status"

    def _discovered_reset(self) -> None:
        """A new session resends everything: the broker may have lost retained messages."""
        self._discovered = dict.fromkeys(self._discovered, b"\x00")
        self._config_sent = None

    async def _publish(self, client: aiomqtt.Client, message: Message) -> None:
        await mqtt_session.publish(
            client,
            message.topic,
            message.payload,
            qos=message.qos,
            retain=message.retain,
            within=self.publish_timeout,
        )

    # ------------------------------------------------------------------ state

    async def _publish_states(self, client: aiomqtt.Client) -> None:
        state: MinerState | None = self._provide()
        while True:
            if state is not None:
                for message in self._round(state):
                    await self._publish(client, message)
                self._previous = state
                self.rounds += 1
            state = await self._slot.get(self.config.interval) or self._provide()

    def _provide(self) -> MinerState | None:
        try:
            return self.state_provider()
        except Exception:
            log.exception("MQTT telemetry could not read the miner state")
            return None

    def _round(self, state: MinerState) -> list[Message]:
        """Everything one publish round sends: discovery changes, config, state, events."""
        configs = discovery.discovery_configs(state, self.topics, self.config.discovery_prefix)
        messages, self._discovered = discovery.discovery_updates(configs, self._discovered)
        config = topics.config_message(self.topics, state)
        if config.payload != self._config_sent:
            messages.append(config)
            self._config_sent = config.payload
        energy = self._energy.update(state.power_w, self._clock())
        messages += topics.state_messages(self.topics, state, energy_kwh=energy)
        messages += topics.event_messages(self.topics, self._previous, state)
        return messages

    # ------------------------------------------------------------------ commands

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = message.topic.value
            raw = message.payload
            payload = bytes(raw) if isinstance(raw, bytes | bytearray) else b""
            if topic == self._ha_status:
                if payload == b"online" and not message.retain:  # HA restarted: rediscover
                    self._discovered_reset()
                    self._wake()
                continue
            if message.retain:
                log.warning("retained MQTT command ignored", topic=topic)
                continue
            await self._accept(client, topic, payload)

    async def _accept(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        state = self._provide()
        if state is None:
            return
        parsed = commands.parse_command(topic, payload, self.topics, state)
        if parsed is None:
            return
        try:
            self._commands.put_nowait(parsed)
        except asyncio.QueueFull:
            busy = CommandError(parsed.name, parsed.request_id, "busy: too many pending commands")
            await self._publish(client, self._result(busy, None))

    async def _execute_commands(self) -> None:
        while True:
            item = await self._commands.get()
            outcome = None if isinstance(item, CommandError) else await self._execute(item)
            self._results.append(self._result(item, outcome))
            self._results_ready.set()
            if outcome is not None and outcome.ok:
                self._wake()

    async def _execute(self, command: Command) -> ControlOutcome:
        log.info("MQTT command", command=command.name, request_id=command.request_id)
        outcome = await call_control(
            self._control_call(command), within=self.command_timeout, what=command.name
        )
        if not outcome.ok:
            log.warning("MQTT command failed", command=command.name, error=outcome.error)
        return outcome

    def _control_call(self, command: Command) -> Callable[[], Awaitable[float | int | None]]:
        control = self.control

        async def call() -> float | int | None:
            match command.name:
                case "pause":
                    await control.pause(command.reason)
                case "resume":
                    await control.resume()
                case "mining" if command.running:
                    await control.resume()
                case "mining":
                    await control.pause(command.reason)
                case "set_frequency":
                    return await control.set_frequency(command.device, command.mhz)
                case "set_fan":
                    return await control.set_fan(command.device, command.percent)
                case "set_core_voltage":
                    return await control.set_core_voltage(command.device, command.volts)
                case "switch_pool":
                    await control.switch_pool(command.pool)
            return None

        return call

    def _result(self, item: Command | CommandError, outcome: ControlOutcome | None) -> Message:
        if isinstance(item, CommandError):
            return commands.result_message(
                self.topics, command=item.name, request_id=item.request_id, error=item.error
            )
        assert outcome is not None
        unit = RESULT_UNITS.get(item.name)
        value = {unit: outcome.value} if unit is not None and outcome.ok else None
        return commands.result_message(
            self.topics,
            command=item.name,
            request_id=item.request_id,
            error=outcome.error,
            result=value,
        )

    async def _send_results(self, client: aiomqtt.Client) -> None:
        while True:
            await self._results_ready.wait()
            while self._results:
                await self._publish(client, self._results[0])
                self._results.popleft()
            self._results_ready.clear()

    def _wake(self) -> None:
        state = self._provide()
        if state is not None:
            self.push(state)
