"""Test support that also powers the demo: a local Stratum pool that validates shares."""
