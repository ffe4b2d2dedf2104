"""Sub-commands of the ``stratum-client`` CLI, one module each."""
