"""stratum-client: a Stratum v1 mining daemon for Bitmain BM13xx ASIC chips."""

from __future__ import annotations

from stratum_client.errors import StratumClientError

__all__ = ["StratumClientError", "__version__"]
__version__ = "0.1.0"
