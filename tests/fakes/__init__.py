"""Faithful local fakes of the platforms, real HTTP servers on loopback, and the fixtures
that start them. `contract.py` registers one fake per adapter for the shared contract test."""
