"""The older Bitaxe Ultra and Supra revisions: a DS4432U DAC trimming a TPS40305 buck.

On the I2C bus: the DS4432U at 0x48 (OUT0, register 0xF8, moves the buck's output from
its nominal 1.451 V), the INA260 power monitor at 0x40 and the EMC2101 at 0x4C. The ASIC
diode is not wired to the EMC2101 on these revisions: the ASIC temperature is the
EMC2101's internal sensor plus 5 °C, as the Bitaxe firmware takes it. The buck has no
telemetry, so there is no regulator temperature and no fault register; power, current
and voltage are the INA260's.

The supply is switched by POWER_EN (ESP32 GPIO10), active low, on every revision but the
Ultra 204. Which bridge GPIO index carries it is not in any bridge firmware we know of
(the original maps only index 0, RST_N): the board option ``power_en_line`` says, and
defaults to 1, the index the emulated board serves it on.

Power-up order: reset held, fan up, core voltage trimmed (OUT0 written and read back),
supply enabled (POWER_EN low) where there is an enable, wait, reset released, then chip
init. Safe state and power-down take POWER_EN high (supply off). The Ultra 204 cannot
switch its rail off: there the safe state trims the DAC to its lowest output (code 0xFF,
about 0.99 V) and holds the chip in reset, and every report says the rail stays live.
"""

from __future__ import annotations

from typing import ClassVar

from stratum_client.boards.base import BoardLimits, BoardReadings, BoardSpec, Sensor
from stratum_client.boards.builtin.bitaxe_bridge import (
    BM136X_LIMITS,
    BitaxeRawBoard,
    all_failed,
    read_sensor,
)
from stratum_client.boards.codecs import ds4432u
from stratum_client.boards.errors import BoardError, ControlLinkError
from stratum_client.boards.peripherals import Ds4432u, Ina260

__all__ = [
    "ASIC_TEMP_OFFSET_C",
    "POWER_EN_LINE",
    "BitaxeSupra400",
    "BitaxeUltra201",
    "BitaxeUltra204",
    "DacBitaxeBoard",
]

POWER_EN_LINE = 1
"""Default bridge GPIO index of POWER_EN (ESP32 GPIO10): our choice, see the module doc."""
ASIC_TEMP_OFFSET_C = 5.0
"""Added to the EMC2101 internal temperature to stand for the ASIC's (the firmware's offset)."""
LOWEST_TRIM_V = ds4432u.volts_from_code(ds4432u.LOWEST_CODE)


class DacBitaxeBoard(BitaxeRawBoard):
    """One DS4432U Bitaxe over bitaxe-raw; subclasses give the chip and the enable line."""

    sensors: ClassVar[frozenset[Sensor]] = frozenset(
        {Sensor.ASIC_TEMP, Sensor.FAN_RPM, Sensor.POWER}
    )
    power_enable: ClassVar[bool] = True
    """Whether the board has POWER_EN; without it the rail is live whenever 5 V is."""
    rail_off_step = "supply off (POWER_EN high)"

    def __init__(self, spec: BoardSpec) -> None:
        super().__init__(spec)
        self.dac = Ds4432u(self.client)
        self.ina = Ina260(self.client)
        self.power_en_line = self._power_en_line()
        self.rail_up = False
        """Whether power-up left the rail at the target (a trim is then applied at once)."""

    def _power_en_line(self) -> int:
        line = self.spec.board_options.get("power_en_line", POWER_EN_LINE)
        if isinstance(line, bool) or not isinstance(line, int) or not 0 <= line <= 255:
            raise BoardError(
                f"{self.label}: board option power_en_line must be 0..255, got {line!r}"
            )
        return line

    async def _identify(self) -> None:
        await self.emc.identify()
        await self.ina.identify()
        await self.dac.code()  # no ID register: that it answers is the check

    async def _rail_off(self) -> None:
        """Supply disabled where the board can, and the trim at its lowest either way: a
        bridge whose POWER_EN line drives nothing still leaves the rail at its minimum."""
        self.rail_up = False
        try:
            if self.power_enable:
                await self.client.set_line(self.power_en_line, True)  # active low: high = off
        finally:
            await self.dac.write_code(ds4432u.LOWEST_CODE)

    async def _relink(self) -> None:
        was_open = self.link.is_open
        await super()._relink()
        if not was_open:
            self.rail_up = False  # what the rail did while the port was gone is unknown

    # -- power ----------------------------------------------------------------------------

    async def power_up(self) -> None:
        """Reset held, fan up, core voltage trimmed, supply enabled, reset released."""
        if not self.vout_target:
            raise BoardError(f"{self.label}: no core voltage to power up with")
        delays = self.delays
        await self._relink()
        await self._hold_reset()
        await self.clock.sleep(delays.reset_hold_s)
        await self._fan_for_power_up(None, None)
        code = await self.dac.trim(self.vout_target)
        await self.clock.sleep(delays.after_configure_s)
        if self.power_enable:
            await self.client.set_line(self.power_en_line, False)  # active low: supply on
        await self.clock.sleep(delays.after_turn_on_s)
        self.rail_up = True
        await self._release_reset()
        self._log.info("board powered up", vout=self.vout_target, trim=f"0x{code:02X}")

    async def set_core_voltage(self, volts: float) -> None:
        """Trim at once while the rail is up; else kept for the next power-up (a trim
        while off would lift a 204's live rail out of its safe minimum)."""
        self.vout_target = self.check_core_voltage(volts)
        if self.rail_up:
            await self.dac.trim(self.vout_target)

    # -- readings -------------------------------------------------------------------------

    async def readings(self) -> BoardReadings:
        """Every sensor once; each fails on its own into a failed reading."""
        at = self.clock.now()
        try:
            await self._relink()
        except ControlLinkError as exc:
            return all_failed(at, str(exc))
        return BoardReadings(
            at=at,
            asic_temp_c=await read_sensor(self._asic_temperature),
            fan_rpm=await read_sensor(self._rpm),
            fan_duty_pct=await read_sensor(self.emc.duty),
            vin_v=await read_sensor(self.ina.bus_voltage),
            iin_a=await read_sensor(self.ina.current),
            power_w=await read_sensor(self.ina.power),
            link_lost=not self.link.is_open,
        )

    async def _asic_temperature(self) -> float:
        return await self.emc.internal_temperature() + ASIC_TEMP_OFFSET_C


class BitaxeUltra201(DacBitaxeBoard):
    """Bitaxe Ultra 0.11, 201, 202, 203 and 205: one BM1366, DS4432U, POWER_EN."""

    name = "bitaxe-ultra-201"
    chip_driver = "bm1366"
    default_frequency_mhz = 485.0
    default_core_voltage_v = 1.2
    limits: ClassVar[BoardLimits] = BM136X_LIMITS


class BitaxeUltra204(DacBitaxeBoard):
    """Bitaxe Ultra 204: one BM1366 on a DS4432U with no enable line.

    "Core voltage off" cannot happen here: the safe state trims to the DAC's lowest
    output and holds reset, and :attr:`core_off` says so wherever the state is reported.
    """

    name = "bitaxe-ultra-204"
    chip_driver = "bm1366"
    default_frequency_mhz = 485.0
    default_core_voltage_v = 1.2
    limits: ClassVar[BoardLimits] = BM136X_LIMITS
    power_enable = False
    rail_off_step = "core voltage to the lowest trim (no enable line)"
    core_off = f"live at the lowest trim, about {LOWEST_TRIM_V:.2f} V (no enable line)"


class BitaxeSupra400(DacBitaxeBoard):
    """Bitaxe Supra 400 and 401: one BM1368, DS4432U, POWER_EN."""

    name = "bitaxe-supra-400"
    chip_driver = "bm1368"
    default_frequency_mhz = 490.0
    default_core_voltage_v = 1.166
    limits: ClassVar[BoardLimits] = BM136X_LIMITS
