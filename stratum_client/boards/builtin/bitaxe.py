"""Bitaxe Gamma, Supra and Ultra with the TPS546 core regulator, behind the bitaxe-raw bridge.

On the I2C bus: the TPS546 core regulator at 0x24 and the EMC2101 fan controller, whose
external diode is the ASIC's, at 0x4C; the bridge, reset line and switch-off sequences are
:mod:`.bitaxe_bridge`'s. The older DS4432U revisions are in :mod:`.bitaxe_dac`.

Power-up order (chips are dead until the last step): reset asserted, TPS546 configured
with the output off (VOUT_MODE read, limits written), VOUT_COMMAND set, output on and
read back, reset released, then the daemon starts the chip driver on the data port. The
waits between the steps are the ones the Bitaxe firmware and host tools use.
"""

from __future__ import annotations

from typing import ClassVar

from stratum_client.boards.base import BoardLimits, BoardReadings, BoardSpec, Range, Reading, Sensor
from stratum_client.boards.builtin.bitaxe_bridge import (
    BITAXE_RAW_USB,
    BM136X_LIMITS,
    RESET_LINE,
    BitaxeRawBoard,
    BitaxeTiming,
    all_failed,
    read_sensor,
)
from stratum_client.boards.codecs.pmbus import fault_names
from stratum_client.boards.errors import BoardError, ControlLinkError, PeripheralError
from stratum_client.boards.peripherals import Tps546

__all__ = [
    "BITAXE_RAW_USB",
    "RESET_LINE",
    "BitaxeBoard",
    "BitaxeGamma",
    "BitaxeSupra",
    "BitaxeTiming",
    "BitaxeUltra",
]

VOUT_TOLERANCE = 0.1
"""Read-back VOUT may differ from the command by this fraction after turn-on."""


class BitaxeBoard(BitaxeRawBoard):
    """One TPS546 Bitaxe over bitaxe-raw; subclasses give the chip and its defaults."""

    sensors: ClassVar[frozenset[Sensor]] = frozenset(Sensor)
    emc2101_ideality: ClassVar[int | None] = None
    emc2101_beta: ClassVar[int | None] = None

    def __init__(self, spec: BoardSpec) -> None:
        super().__init__(spec)
        self.tps = Tps546(self.client)

    async def _identify(self) -> None:
        await self.tps.identify()
        await self.emc.identify()

    async def _rail_off(self) -> None:
        await self.tps.turn_off()

    # -- power ----------------------------------------------------------------------------

    async def power_up(self) -> None:
        """Reset held, fan up, regulator configured, VOUT set, output on, reset released."""
        if not self.vout_target:
            raise BoardError(f"{self.label}: no core voltage to power up with")
        delays = self.delays
        await self._relink()
        await self._hold_reset()
        await self.clock.sleep(delays.reset_hold_s)
        await self._fan_for_power_up(self.emc2101_ideality, self.emc2101_beta)
        await self.tps.read_vout_mode()
        await self.tps.configure()
        await self.clock.sleep(delays.after_configure_s)
        await self.tps.turn_on(self.vout_target)
        await self.clock.sleep(delays.after_turn_on_s)
        measured = await self.tps.read_vout()
        if abs(measured - self.vout_target) > VOUT_TOLERANCE * self.vout_target:
            await self.tps.turn_off()
            raise PeripheralError(
                f"{self.label}: VOUT reads {measured:.3f} V after turn-on "
                f"(commanded {self.vout_target:.3f} V); output switched off"
            )
        await self._release_reset()
        self._log.info("board powered up", vout=round(measured, 4))

    # -- settings -------------------------------------------------------------------------

    async def set_core_voltage(self, volts: float) -> None:
        """Change VOUT_COMMAND (applied at once while the output is on)."""
        self.vout_target = self.check_core_voltage(volts)
        await self.tps.set_vout(self.vout_target)

    # -- readings -------------------------------------------------------------------------

    async def readings(self) -> BoardReadings:
        """Every sensor once; each fails on its own into a failed :class:`Reading`."""
        at = self.clock.now()
        try:
            await self._relink()
        except ControlLinkError as exc:
            return all_failed(at, str(exc))
        vout = await read_sensor(self.tps.read_vout)
        iout = await read_sensor(self.tps.read_iout)
        power: Reading[float] = Reading.failed(vout.error or iout.error or "no value")
        if vout.ok and iout.ok:
            power = Reading.of((vout.value or 0.0) * (iout.value or 0.0))
        return BoardReadings(
            at=at,
            asic_temp_c=await read_sensor(self.emc.external_temperature),
            vr_temp_c=await read_sensor(self.tps.read_temperature),
            fan_rpm=await read_sensor(self._rpm),
            fan_duty_pct=await read_sensor(self.emc.duty),
            vin_v=await read_sensor(self.tps.read_vin),
            vout_v=vout,
            iout_a=iout,
            power_w=power,
            faults=await read_sensor(self._faults),
            settling=self._settling(at),
            link_lost=not self.link.is_open,
        )

    async def _faults(self) -> tuple[str, ...]:
        return fault_names(await self.tps.status_word())


class BitaxeGamma(BitaxeBoard):
    """Bitaxe Gamma (600 series): one BM1370, TPS546, EMC2101 external diode."""

    name = "bitaxe-gamma"
    chip_driver = "bm1370"
    default_frequency_mhz = 525.0
    default_core_voltage_v = 1.15
    limits: ClassVar[BoardLimits] = BoardLimits(
        core_voltage_v=Range(1.0, 1.3),
        fan_percent=Range(0.0, 100.0),
        frequency_mhz=Range(400.0, 625.0),
    )
    emc2101_ideality = 0x24
    emc2101_beta = 0x00


class BitaxeSupra(BitaxeBoard):
    """Bitaxe Supra (402/403): one BM1368 on a TPS546."""

    name = "bitaxe-supra"
    chip_driver = "bm1368"
    default_frequency_mhz = 490.0
    default_core_voltage_v = 1.166
    limits: ClassVar[BoardLimits] = BM136X_LIMITS


class BitaxeUltra(BitaxeBoard):
    """Bitaxe Ultra (207): one BM1366 on a TPS546."""

    name = "bitaxe-ultra"
    chip_driver = "bm1366"
    default_frequency_mhz = 485.0
    default_core_voltage_v = 1.2
    limits: ClassVar[BoardLimits] = BM136X_LIMITS
