"""A fake hashing chip and its stratum-client driver (a test plug-in).

* :mod:`.wire` – the chip's frames (``construct``) and a stream splitter
* :mod:`.chip` – the chip: a thread on the far side of a pty that really hashes
* :mod:`.driver` – :class:`~.driver.FakeChipDriver`, standing only on ``AsicDriver``
"""
