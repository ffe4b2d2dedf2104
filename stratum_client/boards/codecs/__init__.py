"""Sans-IO codecs of the board peripherals: bytes and numbers in, bytes and numbers out.

Nothing here opens a port or reads a clock (``tests/boards/test_boards_layering.py``);
the async wrappers in :mod:`stratum_client.boards.peripherals` and the emulator's register
models in :mod:`stratum_client.boards.emulator` are built on them.
"""
