"""The sandbox marketplace: a simulated platform speaking HTTP, for demos and tests.

It takes orders under idempotency keys, lets simulated workers take and deliver them, sends
Standard Webhooks-signed events back, keeps everything in its own SQLite file, and injects
faults on demand (see options.py). Modules: validation, store, market (the rules), workers
(the simulation), sender (webhooks), app (HTTP), server (threads and serving).
"""

from __future__ import annotations

from dispatcher.sandbox.app import create_sandbox_app
from dispatcher.sandbox.server import RunningSandbox, run_sandbox, start_sandbox_in_thread

__all__ = ["RunningSandbox", "create_sandbox_app", "run_sandbox", "start_sandbox_in_thread"]
