"""Per-model facts of the BM13xx chips, as plain data plus the arithmetic built on it.

Everything model-specific that the codec, PLL search, init sequences and driver need
lives in one frozen :class:`ChipModel` per chip, so adding a model is adding a record.

**Chip addressing.** A chain of N chips is addressed ``i·(256 // N)`` for chip ``i``. A
chip reports, in bits 17..24 of the nonce read big-endian (``nh``), a byte that lies in
its own address range ``[addr, addr + interval)``; bits 25..31 of ``nh`` name the core.
The chips therefore partition the nonce space by that byte, and a nonce's chip is
``byte // interval`` (see :meth:`ChipModel.chip_index`). An emulator must report for chip
``i`` only nonces whose byte falls in chip ``i``'s range (:func:`nonce_chip_byte`).

**Power figures** (:attr:`ChipModel.facts`, read by the daemon's power model) are
approximate ASIC-only watts per chip read off published board numbers (regulator losses,
the controller and fans not included); the config overrides them per device:

=======  ==================  ================  ===========================================
chip     default             P per chip        published board figure
=======  ==================  ================  ===========================================
BM1366   485 MHz, 1.200 V    12.0 W (1.0 st.)  Bitaxe Ultra, 1 chip: ≈ 11–13 W
BM1368   490 MHz, 1.166 V    13.0 W (1.0 st.)  Bitaxe Supra, 1 chip: ≈ 12–14 W
BM1370   525 MHz, 1.150 V    16.5 W (1.2 st.)  Bitaxe Gamma, 1 chip: ≈ 15–18 W
BM1397   425 MHz, 1.400 V    10.0 W (0.6 st.)  Compac F at 200–400 MHz: ≈ 5–10 W
=======  ==================  ================  ===========================================
"""

from __future__ import annotations

from dataclasses import dataclass

from stratum_client.asic.facts import ChipFacts

__all__ = [
    "BM1366",
    "BM1368",
    "BM1370",
    "BM1397",
    "JOB_ID_SPACE",
    "MODELS",
    "ChipModel",
    "address_interval",
    "chip_addresses",
    "chip_index",
    "full_scan_ms",
    "job_interval_ms",
    "model_by_chip_id",
    "model_by_name",
    "next_pow2",
    "nonce_chip_byte",
    "nonce_core",
]

JOB_ID_SPACE = 128
"""Chips keep job ids below 128; ids wrap modulo this."""


def next_pow2(n: int) -> int:
    """Smallest power of two ≥ ``n`` (1 for n ≤ 1): chips split work in power-of-two shares."""
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def nonce_chip_byte(nonce: int) -> int:
    """Bits 17..24 of the big-endian view of a nonce: the reporting chip's address byte."""
    return (_nonce_be(nonce) >> 17) & 0xFF


def nonce_core(nonce: int) -> int:
    """Bits 25..31 of the big-endian view of a nonce: the reporting core."""
    return (_nonce_be(nonce) >> 25) & 0x7F


def _nonce_be(nonce: int) -> int:
    """The nonce's four wire bytes (little-endian) read big-endian."""
    return int.from_bytes(nonce.to_bytes(4, "little"), "big")


@dataclass(frozen=True, slots=True)
class ChipModel:
    """What differs between chip models; see module docstring for the addressing rule."""

    name: str
    chip_id: int
    """Value in bytes 2..3 of the chip-id reply (big-endian), e.g. ``0x1366``."""
    cores: int
    small_cores: int
    default_mhz: float
    default_mv: int
    fb_min: int
    """PLL feedback-divider range the search may use."""
    fb_max: int
    reply_size: int
    """Bytes per reply frame: 11, or 9 on the BM1397."""
    job_id_step: int
    """The host advances job ids by this (mod 128)."""
    reply_job_mask: int
    """Job id in a nonce reply's id byte: ``(id & mask) >> shift``."""
    reply_job_shift: int
    reply_sub_mask: int
    """The rest of the id byte: small core (full-header chips) or midstate index (BM1397)."""
    midstate_slots: int
    """0 for chips that take the full header; 4 on the BM1397 (midstates per job)."""
    base_interval_ms: float | None
    """Job interval for one chip; ``None`` means "time to scan the whole space"."""
    pll_post_minus_one: bool
    """PLL post byte is ``(p1−1)<<4 | (p2−1)`` (True) or ``p1<<4 | p2`` (BM1397)."""
    pll_vdo_switch: bool
    """VDO byte becomes 0x50 at VCO ≥ 2400 MHz (True) or is always 0x40."""
    hcn_correction: int | None
    """Subtracted in the hash-counting-number formula; ``None``: the chip has no HCN."""
    static_watts: float
    """Power drawn regardless of frequency, per chip (see the module docstring)."""
    watts_at_default: float
    """Power per chip at ``default_mhz`` and ``default_mv``."""

    @property
    def full_header(self) -> bool:
        """Whether jobs carry the whole header (and the chip rolls version bits itself)."""
        return self.midstate_slots == 0

    @property
    def job_slots(self) -> int:
        """Distinct job ids the host cycles through."""
        return len(self.job_ids())

    def job_ids(self) -> tuple[int, ...]:
        """Job ids in the order the host uses them, starting after id 0."""
        ids: list[int] = []
        job_id = self.next_job_id(0)
        while job_id not in ids:
            ids.append(job_id)
            job_id = self.next_job_id(job_id)
        return tuple(ids)

    def next_job_id(self, previous: int) -> int:
        """The job id that follows ``previous``."""
        return (previous + self.job_id_step) % JOB_ID_SPACE

    def is_job_id(self, job_id: int) -> bool:
        """Whether the host may send ``job_id`` (it survives the reply id-byte round trip)."""
        return job_id in self.job_ids()

    def reply_id_byte(self, job_id: int, sub: int) -> int:
        """The id byte a chip puts in a nonce reply for ``job_id`` and small core/midstate."""
        shifted = job_id << self.reply_job_shift
        if shifted & ~self.reply_job_mask or not 0 <= job_id < JOB_ID_SPACE:
            raise ValueError(f"{self.name}: job id {job_id:#04x} cannot appear in a reply")
        if sub & ~self.reply_sub_mask or sub < 0:
            raise ValueError(f"{self.name}: sub id {sub} exceeds mask {self.reply_sub_mask:#x}")
        return shifted | sub

    def split_reply_id(self, id_byte: int) -> tuple[int, int]:
        """``(job_id, sub)`` from a nonce reply's id byte."""
        return (
            (id_byte & self.reply_job_mask) >> self.reply_job_shift,
            id_byte & self.reply_sub_mask,
        )

    @property
    def facts(self) -> ChipFacts:
        """The figures the rest of the daemon may know (cores, defaults, power)."""
        return ChipFacts(
            self.name,
            self.cores,
            self.small_cores,
            self.default_mhz,
            self.default_mv,
            self.static_watts,
            self.watts_at_default,
        )

    def expected_ghs(self, mhz: float, chips: int = 1) -> float:
        """Nominal hash rate: MHz × small cores × chips / 1000."""
        return mhz * self.small_cores * chips / 1000.0


def address_interval(chip_count: int) -> int:
    """Address distance between neighbouring chips of an ``chip_count``-chip chain."""
    if not 1 <= chip_count <= 256:
        raise ValueError(f"chip count must be 1..256, got {chip_count}")
    return 256 // chip_count


def chip_addresses(chip_count: int) -> tuple[int, ...]:
    """Addresses given to chips 0..N−1 during enumeration."""
    step = address_interval(chip_count)
    return tuple(i * step for i in range(chip_count))


def chip_index(address: int, chip_count: int) -> int:
    """Chain position owning an address byte (from a reply or a nonce).

    Clamped to the last chip: with a chain size that does not divide 256 the top few
    address bytes belong to no chip, and a corrupted reply must not index past the chain.
    """
    return min(address // address_interval(chip_count), chip_count - 1)


def full_scan_ms(
    model: ChipModel,
    chips: int,
    mhz: float,
    version_space: int,
    percent: float = 1.0,
    *,
    default_ms: float = 500.0,
) -> float:
    """Milliseconds for a chain to scan ``version_space`` versions × 2³² nonces, × ``percent``.

    Cores and small cores are rounded up to powers of two because the chip splits the
    space that way: ``nextpow2(small)/nextpow2(cores)`` versions run in parallel inside a
    core, the rest run in series. Returns ``default_ms`` when the inputs make no sense
    (no chips, no frequency), as the reference firmware does.
    """
    cores_up = next_pow2(model.cores)
    small_up = next_pow2(model.small_cores)
    if chips <= 0 or mhz <= 0 or small_up < cores_up:
        return default_ms
    serial_versions = version_space / (small_up / cores_up)
    per_core = serial_versions * 2**32 / cores_up / next_pow2(chips)
    return per_core / (mhz * 1000.0) * percent


def job_interval_ms(model: ChipModel, chips: int, mhz: float) -> float:
    """How often the host sends fresh work to a chain.

    Full-header chips get a fixed interval (far shorter than their 2⁴⁸ nonce×version
    space; it only refreshes work and bounds stale latency) divided by
    ``nextpow2(chips)``; the reference firmware truncates to whole ms (6×BM1368 → 62),
    this returns the exact quotient (62.5). Midstate chips get the time to exhaust their
    ``midstate_slots`` × 2³² space.
    """
    if model.base_interval_ms is not None:
        return model.base_interval_ms / next_pow2(chips)
    return full_scan_ms(model, chips, mhz, version_space=model.midstate_slots)


BM1366 = ChipModel(
    name="BM1366",
    chip_id=0x1366,
    cores=112,
    small_cores=894,
    default_mhz=485.0,
    default_mv=1200,
    fb_min=144,
    fb_max=235,
    reply_size=11,
    job_id_step=8,
    reply_job_mask=0xF8,
    reply_job_shift=0,
    reply_sub_mask=0x07,
    midstate_slots=0,
    base_interval_ms=2000.0,
    pll_post_minus_one=True,
    pll_vdo_switch=True,
    hcn_correction=0,
    static_watts=1.0,
    watts_at_default=12.0,
)

BM1368 = ChipModel(
    name="BM1368",
    chip_id=0x1368,
    cores=80,
    small_cores=1276,
    default_mhz=490.0,
    default_mv=1166,
    fb_min=144,
    fb_max=235,
    reply_size=11,
    job_id_step=24,
    reply_job_mask=0xF0,
    reply_job_shift=1,
    reply_sub_mask=0x0F,
    midstate_slots=0,
    base_interval_ms=500.0,
    pll_post_minus_one=True,
    pll_vdo_switch=True,
    hcn_correction=0,
    static_watts=1.0,
    watts_at_default=13.0,
)

BM1370 = ChipModel(
    name="BM1370",
    chip_id=0x1370,
    cores=128,
    small_cores=2040,
    default_mhz=525.0,
    default_mv=1150,
    fb_min=160,
    fb_max=239,
    reply_size=11,
    job_id_step=24,
    reply_job_mask=0xF0,
    reply_job_shift=1,
    reply_sub_mask=0x0F,
    midstate_slots=0,
    base_interval_ms=500.0,
    pll_post_minus_one=True,
    pll_vdo_switch=True,
    hcn_correction=268,
    static_watts=1.2,
    watts_at_default=16.5,
)

BM1397 = ChipModel(
    name="BM1397",
    chip_id=0x1397,
    cores=168,
    small_cores=672,
    default_mhz=425.0,
    default_mv=1400,
    fb_min=60,
    fb_max=200,
    reply_size=9,
    job_id_step=4,
    reply_job_mask=0xFC,
    reply_job_shift=0,
    reply_sub_mask=0x03,
    midstate_slots=4,
    base_interval_ms=None,
    pll_post_minus_one=False,
    pll_vdo_switch=False,
    hcn_correction=None,
    static_watts=0.6,
    watts_at_default=10.0,
)

MODELS: dict[str, ChipModel] = {m.name: m for m in (BM1366, BM1368, BM1370, BM1397)}


def model_by_name(name: str) -> ChipModel:
    """The model called ``name`` (case-insensitive, e.g. ``"bm1370"``)."""
    try:
        return MODELS[name.upper()]
    except KeyError:
        known = ", ".join(MODELS)
        raise ValueError(f"unknown chip model {name!r} (known: {known})") from None


def model_by_chip_id(chip_id: int) -> ChipModel:
    """The model whose chip-id reply carries ``chip_id``."""
    for model in MODELS.values():
        if model.chip_id == chip_id:
            return model
    raise ValueError(f"unknown chip id {chip_id:#06x}")
