"""An emulated Bitaxe's control side, sans-IO: bitaxe-raw request bytes and ``now`` in,
reply bytes out.

:class:`EmulatedBitaxe` is the USB bridge firmware (V0 or V1 replies, IDs echoed, an
unparsable frame answered with ID 0xFF), the register models on its I2C bus, the RST_N
line on GPIO 0 and a :class:`~.thermal.ThermalModel`. The profile picks the regulator:
the TPS546 at 0x24, or (the older revisions) the DS4432U at 0x48 trimming the core
voltage, the INA260 at 0x40 on the 5 V input and, where the board has one, POWER_EN
(active low) on GPIO :attr:`BoardProfile.power_en_line`; both sets of models exist, only
the profile's answer on the bus. The chip chain is powered only while the rail is on with
VOUT in the board's range and reset is released; the moment either stops holding,
:attr:`on_power_loss` is called so the chain forgets everything, as a chip does. Every
request, and every data-port write the chain refused or took, is kept in :attr:`traffic`
in arrival order.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from stratum_client.boards.codecs import bitaxe_raw as raw
from stratum_client.boards.codecs import ds4432u, emc2101, ina260, tps546

from .faults import BoardFaults, SensorFault
from .models import Ds4432uModel, Emc2101Model, Ina260Model, Nack, Tps546Model
from .thermal import ThermalModel, ThermalParams, chip_power

__all__ = ["BoardProfile", "EmulatedBitaxe", "TrafficEntry"]

RESET_LINE = 0
MAX_RPM = 6000.0
TRAFFIC_KEPT = 20_000
_NACK_TEXT = "I2C WriteRead Error"
_IMPLAUSIBLE_C = 127.0
SUPPLY_V = 5.0
"""The board's input, what the INA260 measures."""
DAC_EFFICIENCY = 0.9
"""The TPS40305 buck's efficiency: input power = core power / this (our number)."""


@dataclass(frozen=True, slots=True)
class BoardProfile:
    """What differs between the emulated Gamma, Supra and Ultra."""

    board: str
    chip: str
    nominal_mhz: float
    nominal_v: float
    nominal_w: float
    vout_range: tuple[float, float] = (1.0, 1.3)
    dac: bool = False
    """A DS4432U-trimmed buck and an INA260 instead of the TPS546."""
    power_en_line: int | None = None
    """GPIO index of POWER_EN (active low) on a DAC board that has one."""


_DAC_RANGE = (0.995, 1.3)
"""1.0–1.3 V, less one DAC step below: the trim rounds towards the lower output."""

PROFILES = {
    "bitaxe-gamma": BoardProfile("bitaxe-gamma", "BM1370", 525.0, 1.15, 18.0),
    "bitaxe-supra": BoardProfile("bitaxe-supra", "BM1368", 490.0, 1.166, 15.0),
    "bitaxe-ultra": BoardProfile("bitaxe-ultra", "BM1366", 485.0, 1.2, 12.0),
    "bitaxe-ultra-201": BoardProfile("bitaxe-ultra-201", "BM1366", 485.0, 1.2, 12.0,
                                     _DAC_RANGE, dac=True, power_en_line=1),
    "bitaxe-ultra-204": BoardProfile("bitaxe-ultra-204", "BM1366", 485.0, 1.2, 12.0,
                                     _DAC_RANGE, dac=True),
    "bitaxe-supra-400": BoardProfile("bitaxe-supra-400", "BM1368", 490.0, 1.166, 15.0,
                                     _DAC_RANGE, dac=True, power_en_line=1),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class TrafficEntry:
    """One control request (``port="control"``) or one data-port write (``"data"``)."""

    seq: int
    at: float
    port: str
    what: str
    """``I2C WRITE 24 01 80``, ``GPIO PIN0 01``; for data: ``chip bytes`` with the count."""
    ok: bool
    """Control: answered without error. Data: the chain was powered and took the bytes."""


class EmulatedBitaxe:
    """The bridge, its peripherals and the thermal model of one board."""

    def __init__(
        self,
        profile: BoardProfile,
        now: float,
        *,
        framing: raw.Framing = raw.Framing.V0,
        thermal: ThermalParams | None = None,
        seed: int = 0,
    ) -> None:
        self.profile = profile
        self.framing = framing
        self.faults = BoardFaults()
        self.tps = Tps546Model()
        self.emc = Emc2101Model(diode_open=profile.dac)
        self.dac = Ds4432uModel()
        self.ina = Ina260Model()
        self.thermal = ThermalModel(thermal or ThermalParams(), now)
        self.reset_released = False
        self.power_en_high = False
        """POWER_EN's level: low (supply on) until the host says otherwise, as a board
        left running would be."""
        self.traffic: deque[TrafficEntry] = deque(maxlen=TRAFFIC_KEPT)
        self.on_power_loss: Callable[[], None] = lambda: None
        self.chip_state: Callable[[], tuple[float, bool]] = lambda: (profile.nominal_mhz, True)
        """The chain's (MHz, clocked) for the power model; the server wires the chain in.
        A clocked chip draws power in proportion to its PLL frequency, work or not."""
        self._buffer = bytearray()
        self._seq = 0
        self._was_powered = False
        self._random = random.Random(seed)
        self._sync(now)

    # -- state -----------------------------------------------------------------------------

    @property
    def supply_enabled(self) -> bool:
        """A DAC board's supply: on unless POWER_EN is high (always on without one)."""
        return self.profile.power_en_line is None or not self.power_en_high

    @property
    def rail_on(self) -> bool:
        return self.supply_enabled if self.profile.dac else self.tps.output_on

    @property
    def vout(self) -> float:
        """The core rail: the TPS546's output, or the DAC's trim while the supply is on."""
        if not self.profile.dac:
            return self.tps.vout
        return ds4432u.volts_from_code(self.dac.out0) if self.supply_enabled else 0.0

    @property
    def vout_in_range(self) -> bool:
        low, high = self.profile.vout_range
        return low <= self.vout <= high

    @property
    def chain_powered(self) -> bool:
        """Whether the chips may answer: the rail on, VOUT in range, reset released."""
        return self.rail_on and self.vout_in_range and self.reset_released

    def record(self, port: str, what: str, ok: bool, now: float) -> None:
        self._seq += 1
        self.traffic.append(TrafficEntry(self._seq, now, port, what, ok))

    def update(self, now: float) -> None:
        """Advance the thermal model to ``now`` and refresh every measured register."""
        self._sync(now)

    def _power(self) -> tuple[float, float]:
        vout = self.vout
        mhz, hashing = self.chip_state()
        p = self.profile
        watts = chip_power(
            p.nominal_w, p.nominal_mhz, p.nominal_v, mhz=mhz, volts=vout,
            running=hashing and self.chain_powered,
        )  # fmt: skip
        return watts, (watts / vout if vout > 0 else 0.0)

    def _sync(self, now: float) -> None:
        watts, amps = self._power()
        stalled = self.faults.fan_stalled
        duty = 0.0 if stalled else self.emc.duty_pct
        self.thermal.step(now, watts, amps, duty)
        self.tps.iout_a = amps
        self.tps.temperature_c = self.thermal.vr_c
        self.emc.external_c = self.thermal.asic_c
        # the DAC boards read the internal sensor + 5 °C as the ASIC's: make that true here
        self.emc.internal_c = self.thermal.asic_c - (5.0 if self.profile.dac else 10.0)
        self.emc.rpm = 0.0 if stalled else MAX_RPM * duty / 100.0
        self.ina.volts = SUPPLY_V if self.supply_enabled else 0.0
        self.ina.amps = watts / DAC_EFFICIENCY / SUPPLY_V
        if self.faults.vr_fault:
            self.tps.latch(self.faults.vr_fault)
        self._check_power()

    def _check_power(self) -> None:
        powered = self.chain_powered
        if self._was_powered and not powered:
            self.on_power_loss()
        self._was_powered = powered

    # -- bytes in, bytes out ---------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> bytes:
        """Host bytes on the control port (any split) → the replies they complete."""
        self._buffer += data
        out = bytearray()
        while len(self._buffer) >= 2:
            length = int.from_bytes(self._buffer[:2], "little")
            if length < raw.MIN_REQUEST_LENGTH:
                del self._buffer[:]
                out += raw.encode_error(raw.PARSE_ERROR_ID, raw.ErrorCode.INVALID_COMMAND, "",
                                        self.framing)  # fmt: skip
                break
            if len(self._buffer) < length:
                break
            frame = bytes(self._buffer[:length])
            del self._buffer[:length]
            out += self._answer(raw.decode_request(frame), now)
        return bytes(out)

    def _answer(self, request: raw.Request, now: float) -> bytes:
        self._sync(now)
        fault = self._sensor_fault(request)
        if fault is SensorFault.GARBAGE:
            self.faults.garbage_sent += 1
            self.record("control", request.describe(), False, now)
            return bytes([0x5A, 0xF0]) + self._random.randbytes(5)
        try:
            if fault is SensorFault.NACK:
                self.faults.nacks_sent += 1
                raise Nack
            data = self._dispatch(request, fault)
        except Nack:
            self.record("control", request.describe(), False, now)
            return raw.encode_error(request.id, raw.ErrorCode.ERROR, _NACK_TEXT, self.framing)
        except _InvalidCommandError:
            self.record("control", request.describe(), False, now)
            return raw.encode_error(request.id, raw.ErrorCode.INVALID_COMMAND, "", self.framing)
        self._sync(now)
        self.record("control", request.describe(), True, now)
        return raw.encode_reply(request.id, data, self.framing)

    def _sensor_fault(self, request: raw.Request) -> SensorFault | None:
        if request.page != raw.Page.I2C or not request.data:
            return None
        return self.faults.sensors.get(request.data[0])

    def _dispatch(self, request: raw.Request, fault: SensorFault | None) -> bytes:
        match request.page:
            case raw.Page.I2C:
                return self._i2c(request, fault)
            case raw.Page.GPIO:
                return self._gpio(request)
            case raw.Page.ADC if request.command in raw.ADC_COMMANDS:
                return (1650).to_bytes(2, "little")
        raise _InvalidCommandError

    def _gpio(self, request: raw.Request) -> bytes:
        power_en = self.profile.power_en_line
        if request.command not in (RESET_LINE, power_en) or len(request.data) > 1:
            raise _InvalidCommandError
        if request.command == power_en:
            if request.data:
                self.power_en_high = bool(request.data[0])
            return bytes([int(self.power_en_high)])
        if request.data:
            self.reset_released = bool(request.data[0])
        return bytes([int(self.reset_released)])

    def _i2c(self, request: raw.Request, fault: SensorFault | None) -> bytes:
        command, data = request.command, request.data
        if command == raw.I2cCommand.SET_FREQUENCY and len(data) == 4:
            return data
        if len(data) < 2 and command != raw.I2cCommand.WRITE:
            raise _InvalidCommandError
        device = self._device(data[0])
        if command == raw.I2cCommand.WRITE:
            device.write(data[1:])
            return bytes([len(data) - 1])
        if command == raw.I2cCommand.WRITE_READ:
            reply = device.write_read(data[1:-1], data[-1])
            if fault is SensorFault.IMPLAUSIBLE and data[0] == emc2101.ADDRESS:
                reply = self._implausible(data[1], reply)
            return reply
        if command == raw.I2cCommand.READ:
            return device.write_read(b"", data[1]) if isinstance(device, Emc2101Model) else (
                bytes(data[1]))  # fmt: skip
        raise _InvalidCommandError

    def _implausible(self, register: int, reply: bytes) -> bytes:
        msb, lsb = emc2101.encode_external_temperature(_IMPLAUSIBLE_C)
        if register == emc2101.Register.EXTERNAL_TEMP_MSB:
            self.emc.write(bytes([emc2101.Register.EXTERNAL_TEMP_MSB]))
            return bytes([msb])
        if register == emc2101.Register.EXTERNAL_TEMP_LSB:
            return bytes([lsb])
        if register == emc2101.Register.INTERNAL_TEMP:
            return bytes([round(_IMPLAUSIBLE_C - (5.0 if self.profile.dac else 0.0)) & 0xFF])
        return reply

    def _device(self, address: int) -> Tps546Model | Emc2101Model | Ds4432uModel | Ina260Model:
        devices: dict[int, Tps546Model | Emc2101Model | Ds4432uModel | Ina260Model] = (
            {ds4432u.ADDRESS: self.dac, ina260.ADDRESS: self.ina} if self.profile.dac
            else {tps546.ADDRESS: self.tps}
        )  # fmt: skip
        devices[emc2101.ADDRESS] = self.emc
        try:
            return devices[address]
        except KeyError:
            raise Nack from None


class _InvalidCommandError(Exception):
    """A request the bridge does not know: answered with INVALID_COMMAND."""
