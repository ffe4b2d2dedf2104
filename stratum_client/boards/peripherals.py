"""Async peripheral drivers on an :class:`~stratum_client.boards.bus.I2cBus`.

Each is a thin shell over its codec: it turns a codec's transactions into bus calls and
a reply into a number, raising :class:`~stratum_client.boards.errors.PeripheralError` for
values no working device returns (a wrong ID, a diode fault code).
"""

from __future__ import annotations

from .bus import I2cBus
from .codecs import ds4432u, emc2101, ina260, lm75, tps546
from .codecs.pmbus import decode_linear11, decode_ulinear16, encode_ulinear16
from .codecs.tps546 import Command
from .errors import PeripheralError

__all__ = ["Ds4432u", "Emc2101", "Ina260", "Lm75", "Tps546"]


class Tps546:
    """The TPS546D24A core regulator (PMBus)."""

    def __init__(self, bus: I2cBus, address: int = tps546.ADDRESS) -> None:
        self.bus = bus
        self.address = address
        self.vout_mode: int | None = None

    async def _byte(self, command: Command) -> int:
        return (await self.bus.write_read(self.address, bytes([command]), 1))[0]

    async def _word(self, command: Command) -> int:
        data = await self.bus.write_read(self.address, bytes([command]), 2)
        return int.from_bytes(data, "little")

    async def _send(self, frame: bytes) -> None:
        await self.bus.write(self.address, frame)

    async def identify(self) -> bytes:
        """Read IC_DEVICE_ID and check it is a TPS546 (PeripheralError otherwise)."""
        block = await self.bus.write_read(self.address, bytes([Command.IC_DEVICE_ID]), 7)
        try:
            device_id = tps546.parse_device_id(block)
        except ValueError as exc:
            raise PeripheralError(f"TPS546 at 0x{self.address:02X}: {exc}") from exc
        if device_id not in tps546.DEVICE_IDS:
            raise PeripheralError(
                f"device at 0x{self.address:02X} is not a TPS546 (ID {device_id.hex(' ')})"
            )
        return device_id

    async def read_vout_mode(self) -> int:
        self.vout_mode = await self._byte(Command.VOUT_MODE)
        if self.vout_mode >> 5 & 0x3:
            raise PeripheralError(f"TPS546 VOUT_MODE 0x{self.vout_mode:02X} is not ULINEAR16")
        return self.vout_mode

    async def _mode(self) -> int:
        return self.vout_mode if self.vout_mode is not None else await self.read_vout_mode()

    async def configure(self) -> None:
        """Output off, obey OPERATION, every limit written; the output stays off."""
        for write in tps546.configuration(await self._mode()):
            await self._send(write.frame)

    async def turn_on(self, volts: float) -> None:
        """Set VOUT, clear faults, output on; check OPERATION and the OFF bit took."""
        for write in tps546.turn_on(volts, await self._mode()):
            await self._send(write.frame)
        operation = await self._byte(Command.OPERATION)
        if operation != tps546.OPERATION_ON:
            raise PeripheralError(f"TPS546 OPERATION reads 0x{operation:02X} after turn-on")

    async def set_vout(self, volts: float) -> None:
        word = encode_ulinear16(volts, await self._mode())
        await self._send(bytes([Command.VOUT_COMMAND]) + word.to_bytes(2, "little"))

    async def turn_off(self) -> None:
        await self._send(bytes([Command.OPERATION, tps546.OPERATION_OFF]))

    async def clear_faults(self) -> None:
        await self._send(bytes([Command.CLEAR_FAULTS]))

    async def operation(self) -> int:
        return await self._byte(Command.OPERATION)

    async def status_word(self) -> int:
        return await self._word(Command.STATUS_WORD)

    async def read_vin(self) -> float:
        return decode_linear11(await self._word(Command.READ_VIN))

    async def read_vout(self) -> float:
        return decode_ulinear16(await self._word(Command.READ_VOUT), await self._mode())

    async def read_iout(self) -> float:
        return decode_linear11(await self._word(Command.READ_IOUT))

    async def read_temperature(self) -> float:
        return decode_linear11(await self._word(Command.READ_TEMPERATURE_1))

    async def read_pout(self) -> float:
        return decode_linear11(await self._word(Command.READ_POUT))


class Emc2101:
    """The EMC2101 fan controller with the ASIC's diode on its external channel."""

    def __init__(self, bus: I2cBus, address: int = emc2101.ADDRESS) -> None:
        self.bus = bus
        self.address = address

    async def _get(self, register: emc2101.Register) -> int:
        return (await self.bus.write_read(self.address, bytes([register]), 1))[0]

    async def _set(self, register: emc2101.Register, value: int) -> None:
        await self.bus.write(self.address, bytes([register, value & 0xFF]))

    async def identify(self) -> None:
        maker = await self._get(emc2101.Register.MANUFACTURER_ID)
        product = await self._get(emc2101.Register.PRODUCT_ID)
        if maker != emc2101.MANUFACTURER_ID or product not in emc2101.PRODUCT_IDS:
            raise PeripheralError(
                f"device at 0x{self.address:02X} is not an EMC2101 "
                f"(manufacturer 0x{maker:02X}, product 0x{product:02X})"
            )

    async def configure(self, ideality: int | None = None, beta: int | None = None) -> None:
        """Tach input on, direct duty mode; diode ideality and beta where the board sets them."""
        config = await self._get(emc2101.Register.CONFIG)
        await self._set(emc2101.Register.CONFIG, config | emc2101.CONFIG_TACH_ENABLE)
        await self._set(emc2101.Register.FAN_CONFIG, emc2101.FAN_CONFIG_DIRECT)
        if ideality is not None:
            await self._set(emc2101.Register.IDEALITY, ideality)
        if beta is not None:
            await self._set(emc2101.Register.BETA, beta)

    async def set_duty(self, percent: float) -> None:
        await self._set(emc2101.Register.FAN_SETTING, emc2101.duty_from_percent(percent))

    async def duty(self) -> float:
        return emc2101.percent_from_duty(await self._get(emc2101.Register.FAN_SETTING))

    async def rpm(self) -> int:
        low = await self._get(emc2101.Register.TACH_LSB)  # latches the MSB
        high = await self._get(emc2101.Register.TACH_MSB)
        return emc2101.rpm_from_tach(high << 8 | low)

    async def external_temperature(self) -> float:
        msb = await self._get(emc2101.Register.EXTERNAL_TEMP_MSB)  # latches the LSB
        lsb = await self._get(emc2101.Register.EXTERNAL_TEMP_LSB)
        try:
            return emc2101.decode_external_temperature(msb, lsb)
        except emc2101.DiodeFaultError as exc:
            raise PeripheralError(f"EMC2101: {exc}") from exc

    async def internal_temperature(self) -> float:
        return emc2101.decode_internal_temperature(await self._get(emc2101.Register.INTERNAL_TEMP))


class Ina260:
    """The INA260 power monitor."""

    def __init__(self, bus: I2cBus, address: int = ina260.ADDRESS) -> None:
        self.bus = bus
        self.address = address

    async def _get(self, register: ina260.Register) -> bytes:
        return await self.bus.write_read(self.address, bytes([register]), 2)

    async def identify(self) -> None:
        maker = int.from_bytes(await self._get(ina260.Register.MANUFACTURER_ID), "big")
        if maker != ina260.MANUFACTURER_ID:
            raise PeripheralError(f"device at 0x{self.address:02X} is not an INA260")

    async def current(self) -> float:
        return ina260.decode_current(await self._get(ina260.Register.CURRENT))

    async def bus_voltage(self) -> float:
        return ina260.decode_bus_voltage(await self._get(ina260.Register.BUS_VOLTAGE))

    async def power(self) -> float:
        return ina260.decode_power(await self._get(ina260.Register.POWER))


class Ds4432u:
    """The DS4432U current DAC trimming the core buck's feedback (OUT0)."""

    def __init__(self, bus: I2cBus, address: int = ds4432u.ADDRESS) -> None:
        self.bus = bus
        self.address = address

    async def code(self) -> int:
        """OUT0 as the DAC holds it (the part has no ID register: this is its probe)."""
        return (await self.bus.write_read(self.address, bytes([ds4432u.OUT0_REGISTER]), 1))[0]

    async def write_code(self, code: int) -> None:
        """Write OUT0 and read it back: a trim that did not take is an error."""
        await self.bus.write(self.address, bytes([ds4432u.OUT0_REGISTER, code & 0xFF]))
        held = await self.code()
        if held != code & 0xFF:
            raise PeripheralError(
                f"DS4432U OUT0 reads 0x{held:02X} after writing 0x{code & 0xFF:02X}"
            )

    async def trim(self, volts: float) -> int:
        """Trim the output to ``volts``; the code written."""
        try:
            code = ds4432u.trim_code(volts)
        except ValueError as exc:
            raise PeripheralError(f"DS4432U: {exc}") from exc
        await self.write_code(code)
        return code


class Lm75:
    """An LM75-type temperature sensor."""

    def __init__(self, bus: I2cBus, address: int = lm75.ADDRESS) -> None:
        self.bus = bus
        self.address = address

    async def temperature(self) -> float:
        data = await self.bus.write_read(self.address, bytes([lm75.TEMPERATURE_REGISTER]), 2)
        return lm75.decode_temperature(data)
