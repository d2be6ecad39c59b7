"""Turbidity probes with an RS-485 Modbus RTU interface, on a USB-RS485 adapter, read with
minimalmodbus (framing, CRC-16 and decoding are the library's; see hardware.ports.ModbusRegisters).

The probe answers function 3 (holding) or 4 (input registers) at its slave address. Which register
holds NTU, and how, differs per model, so everything is configurable, and presets carry the register
maps of probes we know (documented in hardware/README.md, "Modbus turbidity probes"):

- `dfrobot-sen0710` (DFRobot RS485 turbidity sensor; its wiki, "Register address"): slave 1, 4800 baud
  8N1; register 0x0000 turbidity as u16 = NTU × 10, register 0x0001 temperature as i16 = °C × 10;
  function 3 or 4.

`raw` is the NTU the probe reports (after `scale`); `value` is that NTU, or its calibration.
"""

from __future__ import annotations

import contextlib
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.clock import Clock
from contract.metrics import Metric
from hardware.base import DeviceOptions, PortGone, RawRange, Sample, register
from hardware.ports import DataType, RegisterReader, WordOrder, open_modbus


class _Register(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: int = Field(ge=0, le=65535)
    data_type: DataType = DataType.UINT16
    scale: float = 1.0
    function_code: Literal[3, 4] = 3
    word_order: WordOrder = WordOrder.BIG


class _Preset(BaseModel):
    slave: int
    baudrate: int
    parity: Literal["N", "E", "O"]
    turbidity: _Register
    water_temp: _Register | None


PRESETS: dict[str, _Preset] = {
    "dfrobot-sen0710": _Preset(
        slave=1,
        baudrate=4800,
        parity="N",
        turbidity=_Register(address=0x0000, data_type=DataType.UINT16, scale=0.1),
        water_temp=_Register(address=0x0001, data_type=DataType.INT16, scale=0.1),
    ),
}


class TurbidityModbusOptions(DeviceOptions):
    type: Literal["turbidity-modbus"]
    port: str = "/dev/ttyUSB0"
    preset: Literal["dfrobot-sen0710"] | None = None
    slave: int | None = Field(default=None, ge=1, le=247, description="Default: the preset's, else 1.")
    baudrate: int | None = Field(default=None, description="Default: the preset's, else 9600.")
    parity: Literal["N", "E", "O"] | None = None
    stopbits: Literal[1, 2] = 1
    # `register` in node.toml; named otherwise here because pydantic models have a `register` method
    address: int | None = Field(
        default=None, alias="register", ge=0, le=65535, description="Turbidity register (0-based)."
    )
    data_type: DataType | None = None
    scale: float | None = None
    function_code: Literal[3, 4] | None = None
    word_order: WordOrder | None = None
    temperature_register: int | None = Field(default=None, ge=0, le=65535)
    read_temperature: bool | None = Field(default=None, description="Also report water_temp (presets: yes).")
    timeout_s: float = Field(default=1.0, gt=0, le=10)
    stuck_after_s: float | None = Field(default=3600.0, gt=0)

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="after")
    def _needs_a_register(self) -> TurbidityModbusOptions:
        if self.preset is None and self.address is None:
            raise ValueError(
                "give `register` (the turbidity register) or a `preset` (see docs/configuration.md)"
            )
        return self

    def turbidity(self) -> _Register:
        base = PRESETS[self.preset].turbidity if self.preset else _Register(address=self.address or 0)
        return base.model_copy(
            update={
                key: value
                for key, value in {
                    "address": self.address,
                    "data_type": self.data_type,
                    "scale": self.scale,
                    "function_code": self.function_code,
                    "word_order": self.word_order,
                }.items()
                if value is not None
            }
        )

    def water_temp(self) -> _Register | None:
        preset = PRESETS[self.preset].water_temp if self.preset else None
        if self.read_temperature is False:
            return None
        if self.temperature_register is not None:
            base = preset or _Register(address=self.temperature_register, data_type=DataType.INT16, scale=0.1)
            return base.model_copy(update={"address": self.temperature_register})
        return preset

    def link(self) -> tuple[int, int, str]:
        """(slave, baudrate, parity): explicit keys, else the preset's, else 1, 9600, N."""
        preset = PRESETS[self.preset] if self.preset else None
        slave = self.slave or (preset.slave if preset else 1)
        baudrate = self.baudrate or (preset.baudrate if preset else 9600)
        parity = self.parity or (preset.parity if preset else "N")
        return slave, baudrate, parity


@register(TurbidityModbusOptions)
class TurbidityModbus:
    raw_range: ClassVar[RawRange] = {
        Metric.TURBIDITY: (0.0, 10_000.0),
        Metric.WATER_TEMP: (-20.0, 80.0),
    }

    def __init__(self, opts: TurbidityModbusOptions, registers: RegisterReader | None, clock: Clock) -> None:
        self._opts, self._registers, self._clock = opts, registers, clock
        self._turbidity, self._water_temp = opts.turbidity(), opts.water_temp()
        self.metrics = self.metrics_for(opts)
        self.stuck_after_s = opts.stuck_after_s

    @staticmethod
    def metrics_for(opts: TurbidityModbusOptions) -> tuple[Metric, ...]:
        """Water temperature too when a register for it is configured or preset."""
        return (Metric.TURBIDITY,) + ((Metric.WATER_TEMP,) if opts.water_temp() else ())

    @classmethod
    def open(cls, opts: TurbidityModbusOptions, clock: Clock) -> TurbidityModbus:
        try:
            registers: RegisterReader | None = cls._connect(opts)
        except PortGone:
            registers = None  # the first read says why; later reads try again
        return cls(opts, registers, clock)

    @staticmethod
    def _connect(opts: TurbidityModbusOptions) -> RegisterReader:
        slave, baudrate, parity = opts.link()
        return open_modbus(
            opts.port, slave, baudrate, parity=parity, stopbits=opts.stopbits, timeout_s=opts.timeout_s
        )

    def read(self) -> list[Sample]:
        if self._registers is None:
            self._registers = self._connect(self._opts)
        try:
            samples = [self._sample(Metric.TURBIDITY, self._turbidity)]
            if self._water_temp is not None:
                samples.append(self._sample(Metric.WATER_TEMP, self._water_temp))
        except PortGone:
            self.close()
            raise
        return samples

    def _sample(self, metric: Metric, reg: _Register) -> Sample:
        assert self._registers is not None
        value = self._registers.read(
            reg.address, reg.data_type, function_code=reg.function_code, word_order=reg.word_order
        )
        return Sample(metric, round(value * reg.scale, 6), self._clock())

    def close(self) -> None:
        if self._registers is not None:
            with contextlib.suppress(OSError):  # the adapter is already gone
                self._registers.close()
        self._registers = None
