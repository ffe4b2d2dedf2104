"""Chip drivers for BM13xx ASIC chains, discovered through the ``stratum_client.drivers`` entry-point group."""
