"""What one ``stratum-client demo`` run achieved: the line printed at its end and the
document ``--summary-json`` writes.

The share figures come from the daemon's last snapshot and the pool's own count. The
board's come from its last safety poll (state, ASIC temperature, measured power) and,
for "ended powered down", from the emulated board itself: its regulator's output and
its reset line after the daemon stopped, so the claim does not rest on the daemon's
word.
"""

from __future__ import annotations

from dataclasses import dataclass

from stratum_client.boards.base import Reading
from stratum_client.boards.emulator.server import BoardEmulator
from stratum_client.daemon.boards import BoardChain
from stratum_client.daemon.snapshot import DaemonSnapshot, format_hashrate
from stratum_client.testing.pool import LocalPool

__all__ = ["BoardSummary", "DemoSummary", "board_summary", "demo_summary"]


@dataclass(frozen=True, slots=True)
class BoardSummary:
    """The emulated board at the end of a run."""

    name: str
    """Board kind, e.g. ``bitaxe-gamma``."""
    device: str
    """Its ``[[devices]]`` name, which the APIs and the status line show."""
    state: str
    """Safety state at the last poll (``mining``, ``throttled``, ``safe`` …), or
    ``never up`` when the board never powered up."""
    asic_temp_c: float | None
    power_w: float | None
    """Measured by the board's regulator at the last poll."""
    core_voltage_v: float | None
    powered_down: bool
    """The emulator's core rail is off and its chips held in reset."""
    failures: int
    """Times the board failed to come up or to switch off."""
    accepted: int
    """Shares from the board's chain that the pool accepted."""
    rail_left_v: float = 0.0
    """The emulator's core rail at the end: 0 unless the board cannot switch it off (the
    Ultra 204 leaves it at its lowest trim)."""

    def part(self) -> str:
        temp = f"ASIC {self.asic_temp_c:.1f} °C" if self.asic_temp_c is not None else "no ASIC temp"
        power = f"{self.power_w:.1f} W" if self.power_w is not None else "no power reading"
        off = "powered down" if self.powered_down else "STILL POWERED"
        if not self.powered_down and self.rail_left_v > 0:
            off = f"{off}: rail left at {self.rail_left_v:.2f} V"
        return (
            f"board {self.name}: {self.accepted} accepted, {self.state} at last poll, "
            f"{temp}, {power}, {off}"
        )


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What a run achieved, as printed and as written by ``--summary-json``."""

    seconds: float
    accepted: int
    rejected: int
    stale: int
    lost: int
    pool_accepted: int
    pool_rejected: int
    hashrate: float
    """Average hashes per second since mining started, from nonces × their difficulty."""
    chains: int
    board: BoardSummary | None = None
    """None when the run had no board (``--board none``)."""

    @property
    def ok(self) -> bool:
        return self.accepted > 0 and self.rejected == 0 and self.pool_rejected == 0

    def line(self) -> str:
        line = (
            f"summary: {self.accepted} accepted, {self.rejected} rejected, {self.stale} stale, "
            f"{self.lost} lost; pool counted {self.pool_accepted} accepted, "
            f"{self.pool_rejected} rejected; {format_hashrate(self.hashrate)} "
            f"over {self.seconds:.0f} s"
        )
        return line if self.board is None else f"{line}; {self.board.part()}"


def _value(reading: Reading[float] | None) -> float | None:
    return reading.value if reading is not None and reading.ok else None


def board_summary(
    name: str, chain: BoardChain, emulator: BoardEmulator, snap: DaemonSnapshot
) -> BoardSummary:
    """The board after the daemon stopped: its last poll and the emulator's power state."""
    status = chain.last_poll or chain.status
    shares = [d.total.shares.accepted for d in snap.dispatch.devices if d.name == chain.name]
    readings = status.readings if status is not None else None
    return BoardSummary(
        name=name,
        device=chain.name,
        state=str(status.safety.state) if status is not None else "never up",
        asic_temp_c=_value(readings.asic_temp_c if readings is not None else None),
        power_w=_value(readings.power_w if readings is not None else None),
        core_voltage_v=_value(readings.vout_v if readings is not None else None),
        powered_down=not emulator.board.rail_on and not emulator.board.reset_released,
        rail_left_v=round(emulator.board.vout, 3),
        failures=chain.failures,
        accepted=sum(shares),
    )


def demo_summary(
    snap: DaemonSnapshot, pool: LocalPool, seconds: float, board: BoardSummary | None
) -> DemoSummary:
    """The run's figures from the daemon's last snapshot and the pool's own count."""
    d = snap.dispatch
    return DemoSummary(
        seconds=seconds,
        accepted=d.accepted,
        rejected=d.rejected,
        stale=d.total.shares.stale,
        lost=d.lost,
        pool_accepted=len(pool.accepted),
        pool_rejected=len(pool.rejected),
        hashrate=d.total.hashrate.average,
        chains=len(snap.chains),
        board=board,
    )
