"""Chip drivers for BM13xx ASIC chains.

Drivers are discovered through the ``stratum_client.drivers`` entry-point group.
"""
