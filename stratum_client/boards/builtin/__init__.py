"""The boards this project ships, each registered as a ``stratum_client.boards`` entry point."""
