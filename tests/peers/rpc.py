"""A minimal bitcoind JSON-RPC client over urllib (credentials from the URL)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

NOT_FOUND = -5
"""bitcoind's RPC_INVALID_ADDRESS_OR_KEY: ``getblockheader`` of an unknown block."""


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"bitcoind RPC error {code}: {message}")
        self.code = code


def call(url: str, method: str, *params: Any) -> Any:
    """``method(params)`` on the node at ``url`` (http://user:password@host:port)."""
    parts = urllib.parse.urlsplit(url)
    plain = parts._replace(netloc=f"{parts.hostname}:{parts.port}").geturl()
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    body = {"jsonrpc": "1.0", "id": method, "method": method, "params": list(params)}
    request = urllib.request.Request(
        plain,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            reply = json.load(response)
    except urllib.error.HTTPError as exc:  # errors come with a 4xx/5xx status and a body
        with exc:
            reply = json.load(exc)
    error = reply.get("error")
    if error:
        raise RpcError(int(error.get("code", 0)), str(error.get("message", "")))
    return reply["result"]


def block_confirmations(url: str, block_hash: str) -> int | None:
    """Confirmations of ``block_hash`` (-1: known, off the main chain); None if unknown."""
    try:
        header = call(url, "getblockheader", block_hash)
    except RpcError as exc:
        if exc.code == NOT_FOUND:
            return None
        raise
    return int(header["confirmations"])
