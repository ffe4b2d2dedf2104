"""Pure work building: coinbase, merkle root, header, midstates, targets and share checks."""
