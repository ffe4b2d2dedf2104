"""I/O shells of the board layer: the bitaxe-raw control client and the Linux buses."""
