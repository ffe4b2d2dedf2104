"""BIP310 version-rolling negotiation: what we ask for and what the pool lets us roll.

The mask in force is always the pool's mask intersected with ours, so a pool can never
make us roll bits we did not offer. A refused, ignored or malformed ``mining.configure``
leaves mask 0 and mining carries on without rolling (ESP-Miner, cgminer/gekko do the same).
"""

from __future__ import annotations

from enum import Enum

from stratum_client.errors import InputError
from stratum_client.protocol import params as wire
from stratum_client.protocol.events import (
    Event,
    ProtocolViolation,
    VersionMaskChanged,
    VersionRollingNegotiated,
    VersionRollingUnavailable,
)
from stratum_client.protocol.messages import Response, preview

__all__ = ["VersionRolling"]


class _State(Enum):
    DISABLED = "disabled"
    PENDING = "pending"
    GRANTED = "granted"
    UNAVAILABLE = "unavailable"


class VersionRolling:
    """The negotiation state of one connection; ``wanted`` 0 disables rolling."""

    def __init__(self, wanted: int, min_bit_count: int) -> None:
        self._wanted = wanted
        self._min_bit_count = min_bit_count
        self._state = _State.PENDING if wanted else _State.DISABLED
        self._mask = 0

    @property
    def mask(self) -> int:
        """The mask new jobs get: 0 until (and unless) the pool grants rolling."""
        return self._mask

    def configure_params(self) -> list[object] | None:
        """``mining.configure`` params, or None when rolling is disabled."""
        if self._state is _State.DISABLED:
            return None
        extension = {
            "version-rolling.mask": f"{self._wanted:08x}",
            "version-rolling.min-bit-count": self._min_bit_count,
        }
        return [["version-rolling"], extension]

    def on_configure_reply(self, response: Response) -> list[Event]:
        """Apply the pool's answer; also a late one after we had given up waiting."""
        failure = response.failure()
        if failure is not None:
            return self._unavailable(f"pool refused mining.configure: {failure}")
        result = response.result
        if not isinstance(result, dict) or result.get("version-rolling") is not True:
            return self._unavailable(f"pool declined version-rolling: {preview(result)}")
        try:
            offered = wire.hex_u32(result.get("version-rolling.mask"), "version-rolling.mask")
        except InputError as exc:
            note = ProtocolViolation(f"mining.configure result ignored: {exc}")
            return [note, *self._unavailable("pool sent an invalid version-rolling mask")]
        granted = offered & self._wanted
        if not granted:
            reason = f"pool mask {offered:08x} shares no bits with ours {self._wanted:08x}"
            return self._unavailable(reason)
        self._state, self._mask = _State.GRANTED, granted
        return [VersionRollingNegotiated(granted)]

    def ignored(self, method: str) -> list[Event]:
        """Pools answer in order: a reply to a later request means configure was ignored."""
        if self._state is not _State.PENDING:
            return []
        return self._unavailable(f"no reply to mining.configure before the {method} reply")

    def set_mask(self, value: object) -> list[Event]:
        """``mining.set_version_mask``; raises :class:`InputError` for a malformed mask."""
        self._mask = wire.hex_u32(value, "mask") & self._wanted
        return [VersionMaskChanged(self._mask)]

    def _unavailable(self, reason: str) -> list[Event]:
        if self._state is _State.UNAVAILABLE:  # already concluded; a late refusal adds nothing
            return []
        self._state, self._mask = _State.UNAVAILABLE, 0
        return [VersionRollingUnavailable(reason)]
