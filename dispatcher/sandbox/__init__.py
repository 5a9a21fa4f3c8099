"""The sandbox marketplace: a simulated platform speaking HTTP, for demos and tests."""
