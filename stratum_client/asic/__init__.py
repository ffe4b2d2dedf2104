"""The chip-independent side of the driver boundary.

* :mod:`.base` – the driver base class every chip driver stands on (and the contract)
* :mod:`.records` – the records crossing the boundary (spec, chain, counters, nonces)
* :mod:`.facts` – a chip model's published figures (cores, defaults, power)
* :mod:`.delivery` – verified nonces from a receive task to their consumer
* :mod:`.registry` – drivers through the ``stratum_client.drivers`` entry points; chip
  facts and detection asked of every installed driver
* :mod:`.detect` – what a driver found on a port, and the OS's port records
* :mod:`.transport` – the serial link (ports, pyserial URLs, baud switching, unplug)
* :mod:`.serial_port` – the asyncio transport under it, over a pyserial port
* :mod:`.ptys` – pseudo-terminals for emulated hardware

Chip drivers live in their own distributions (the built-in BM13xx one is ``drivers/``) and
import from here; nothing here imports a driver.
"""
