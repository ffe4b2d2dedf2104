"""What a SIGHUP reload can apply, and what needs a restart.

A reload applies the pool list and the ``[daemon]`` log settings; every other section
keeps what the daemon started with (its chains, APIs and MQTT clients keep running), so
a change there is only reported.
"""

from __future__ import annotations

from typing import Final

from stratum_client.config import Config

__all__ = ["sections_needing_restart"]

_RESTART_SECTIONS: Final = {
    "devices": "[[devices]]",
    "pool_policy": "[pool_policy]",
    "api": "[api]",
    "telemetry": "[telemetry]",
    "energy": "[energy]",
    "alerts": "[alerts]",
}
"""Config sections a reload does not apply (chains, APIs and MQTT clients keep running),
by attribute, with the name the file gives them."""


def sections_needing_restart(old: Config, new: Config) -> list[str]:
    """The file's names of the sections that changed but apply only after a restart."""
    return [
        name
        for section, name in _RESTART_SECTIONS.items()
        if getattr(new, section) != getattr(old, section)
    ]
