"""Secret values from the config: a masking wrapper and the three ways to supply one.

A pool password, the MQTT password and the REST token travel through dataclass reprs,
log events and error messages; wrapping them in :class:`Secret` makes every accidental
``repr``/``str``/f-string print ``***``, so only code that calls :meth:`Secret.reveal`
on purpose ever sees the value.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path

from stratum_client.errors import ConfigError

__all__ = ["MASK", "Secret", "read_secret_env", "read_secret_file", "resolve_secret_path"]

MASK = "***"
"""What a secret prints as, everywhere."""

CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
"""Set by systemd's ``LoadCredential=``; relative secret files are looked up there."""


class Secret:
    """A string that refuses to print itself; get the value with :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value, for the one place that must send it (login, broker, auth)."""
        return self._value

    def __repr__(self) -> str:
        return repr(MASK)

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))


def resolve_secret_path(raw: str, base_dir: Path, env: Mapping[str, str]) -> Path:
    """Absolute paths stay; relative ones prefer systemd's credentials directory.

    That lets the unit say ``LoadCredential=pool-password:...`` and the config just
    ``password_file = "pool-password"``; without systemd the path is relative to the
    config file's directory, never to the working directory of whoever started us.
    """
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    credentials = env.get(CREDENTIALS_ENV)
    if credentials and (Path(credentials) / path).exists():
        return Path(credentials) / path
    return base_dir / path


def read_secret_file(key: str, raw: str, base_dir: Path, env: Mapping[str, str]) -> Secret:
    """Read a secret file, stripped of surrounding whitespace (editors add newlines)."""
    path = resolve_secret_path(raw, base_dir, env)
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            key, f"cannot read secret file {str(path)!r} ({exc.strerror or exc})"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(key, f"secret file {str(path)!r} is not UTF-8 text") from None
    if not value:
        raise ConfigError(key, f"secret file {str(path)!r} is empty; expected the secret")
    return Secret(value)


def read_secret_env(key: str, name: str, env: Mapping[str, str]) -> Secret:
    """Read a secret from an environment variable that must be set and non-empty."""
    value = env.get(name)
    if value is None:
        raise ConfigError(key, f"environment variable {name!r} is not set; expected the secret")
    if not value.strip():
        raise ConfigError(key, f"environment variable {name!r} is empty; expected the secret")
    return Secret(value.strip())
