"""Channel adapters: one module per channel, the contract in `adapters.base`."""
