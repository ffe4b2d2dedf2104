"""Per-pool settings of a Stratum session, validated once when built."""

from __future__ import annotations

from dataclasses import dataclass, field

from stratum_client import __version__
from stratum_client.errors import InputError
from stratum_client.protocol import params
from stratum_client.protocol.codec import DEFAULT_MAX_LINE
from stratum_client.work.job import DEFAULT_VERSION_MASK
from stratum_client.work.versionroll import (
    DEFAULT_VERSION_BITS_FORM,
    VERSION_BITS_FORMS,
    VersionBitsForm,
)

__all__ = ["DEFAULT_USER_AGENT", "SessionSettings"]

DEFAULT_USER_AGENT = f"stratum-client/{__version__}"


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """What a :class:`~stratum_client.protocol.session.PoolSession` needs from config.

    One instance serves every connection to a pool; only the resume id changes per
    connection, so it is passed to the session instead. The password is excluded from
    ``repr`` so logging the settings cannot leak it.
    """

    user: str
    password: str = field(repr=False)
    user_agent: str = DEFAULT_USER_AGENT
    version_mask: int = DEFAULT_VERSION_MASK
    """BIP310 mask we ask for; 0 disables version rolling (no mining.configure sent)."""
    version_bits_form: VersionBitsForm = DEFAULT_VERSION_BITS_FORM
    """How submits carry the rolled version (stamped on every job; see versionroll)."""
    min_bit_count: int = 2
    """BIP310 ``version-rolling.min-bit-count``: 2 is what miners commonly send; a chip
    that needs more rolled bits should raise it."""
    suggest_difficulty: float | None = None
    """Sent as ``mining.suggest_difficulty`` after authorization (ckpool wants it then)."""
    extranonce_subscribe: bool = False
    """Send ``mining.extranonce.subscribe`` (NiceHash-style pools) after authorization."""
    submit_timeout: float = 30.0
    setup_timeout: float = 30.0
    """Seconds to wait for the subscribe and authorize replies."""
    idle_timeout: float | None = 120.0
    """Seconds without any message before :class:`PoolSilent`; None disables."""
    max_jobs: int = 64
    """Jobs kept for submit validation and duplicate detection."""
    max_outstanding: int = 1024
    """Unanswered requests tracked; beyond this the oldest share is reported timed out."""
    max_line: int = DEFAULT_MAX_LINE

    def __post_init__(self) -> None:
        checks = (
            (bool(self.user), "user", "must not be empty"),
            (bool(self.user_agent), "user_agent", "must not be empty"),
            (0 <= self.version_mask <= 0xFFFFFFFF, "version_mask", "must fit in 32 bits"),
            (
                self.version_bits_form in VERSION_BITS_FORMS,
                "version_bits_form",
                f"must be one of {', '.join(VERSION_BITS_FORMS)}",
            ),
            (1 <= self.min_bit_count <= 32, "min_bit_count", "must be 1..32"),
            (self.submit_timeout > 0, "submit_timeout", "must be positive"),
            (self.setup_timeout > 0, "setup_timeout", "must be positive"),
            (
                self.idle_timeout is None or self.idle_timeout > 0,
                "idle_timeout",
                "must be positive",
            ),
            (self.max_jobs >= 1, "max_jobs", "must be at least 1"),
            (self.max_outstanding >= 1, "max_outstanding", "must be at least 1"),
            (self.max_line >= 1024, "max_line", "must be at least 1024 bytes"),
        )
        for ok, name, problem in checks:
            if not ok:
                raise InputError(name, problem)
        if self.suggest_difficulty is not None:
            params.difficulty(self.suggest_difficulty, "suggest_difficulty")
