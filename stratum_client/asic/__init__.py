"""The chip-independent side of the driver boundary.

* :mod:`.base` – the driver contract every chip driver implements
* :mod:`.registry` – finding drivers through the ``stratum_client.drivers`` entry points
* :mod:`.transport` – the serial link (ports, pyserial URLs, baud switching, unplug)
* :mod:`.ptys` – pseudo-terminals for emulated hardware

Chip drivers live in their own distributions (the built-in BM13xx one is ``drivers/``) and
import from here; nothing here imports a driver.
"""
