"""Adapter for Dispatcher's own sandbox marketplace (see dispatcher/sandbox)."""

from __future__ import annotations

from adapters.base import Adapter, JobSpec, Receipt


class SandboxAdapter(Adapter):
    name = "sandbox"
    title = "Sandbox marketplace"

    def dispatch(self, job: JobSpec, idempotency_key: str) -> Receipt:
        raise NotImplementedError
