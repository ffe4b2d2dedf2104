"""Sans-IO Stratum v1: the line codec, typed messages and the session state machine."""
