"""The mining daemon: wiring pools, dispatch and chips, plus signals and systemd."""
