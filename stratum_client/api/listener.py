"""Closing an asyncio TCP listener together with the connections it accepted.

Both API servers need it: on Python 3.11 ``Server.close()`` leaves accepted connections
running, so a client holding one open would keep the daemon's shutdown waiting.
"""

from __future__ import annotations

import asyncio

__all__ = ["close_listener"]


async def close_listener(server: asyncio.Server, handlers: set[asyncio.Task[None]]) -> None:
    """Stop accepting, cancel every connection handler, and wait until all are gone."""
    server.close()
    for handler in list(handlers):
        handler.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)
    await server.wait_closed()
