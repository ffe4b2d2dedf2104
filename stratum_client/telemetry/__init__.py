"""Pushing the daemon's state to where people watch it: MQTT with Home Assistant discovery.

:mod:`.topics` and :mod:`.discovery` turn :class:`~stratum_client.api.model.MinerState`
snapshots into messages and command payloads into validated commands, without I/O;
:mod:`.mqtt` is the aiomqtt shell around them.
"""

from __future__ import annotations

from stratum_client.telemetry.mqtt import MqttTelemetry

__all__ = ["MqttTelemetry"]
