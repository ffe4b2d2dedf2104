"""Mining boards: power, reset, fans, temperatures and the safe state around chip chains.

See ``docs/boards.md``. Nothing is imported here, so loading one part (a codec, the
registry) pulls in no I/O.
"""
