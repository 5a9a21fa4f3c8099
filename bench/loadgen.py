"""Bounded load on 127.0.0.1: signed webhook requests, wrk at saturation, and a small Python
open-loop generator at a fixed rate.

Every request carries its own webhook-id (a redelivery would take the duplicate path) and a
fresh Standard Webhooks signature, so requests are generated just before each run and wrk
replays them from a file through `REQUESTS_LUA`.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from adapters import standard_webhooks

# Each wrk thread loads the file and sends its own slice of it, in order.
REQUESTS_LUA = r"""
local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end
function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  local lines = {}
  for line in io.lines(path) do table.insert(lines, line) end
  local per = math.floor(#lines / nthreads)
  reqs = {}
  for i = (tid - 1) * per + 1, tid * per do
    local id, ts, sig, body = lines[i]:match("([^\t]+)\t([^\t]+)\t([^\t]+)\t(.*)")
    table.insert(reqs, wrk.format("POST", wrk.path, {
      ["Content-Type"] = "application/json",
      ["webhook-id"] = id, ["webhook-timestamp"] = ts, ["webhook-signature"] = sig,
    }, body))
  end
  idx = 0
end
function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end
"""


def signed_requests(secret: str, count: int) -> list[tuple[str, str, str, str]]:
    """(webhook-id, timestamp, signature, body) for `count` sandbox `order.taken` events."""
    run = uuid.uuid4().hex[:10]
    now = int(time.time())
    created = datetime.now(UTC).isoformat()
    out = []
    for i in range(count):
        event_id = f"evt_{run}_{i}"
        body = (
            f'{{"id": "{event_id}", "type": "order.taken", "created_at": "{created}", '
            f'"data": {{"order_id": "ord_{run}_{i}", "worker_id": "w{i % 37}"}}}}'
        )
        sig = standard_webhooks.signature(secret, event_id, now, body.encode())
        out.append((event_id, str(now), sig, body))
    return out


def write_requests(path: Path, requests: list[tuple[str, str, str, str]]) -> Path:
    path.write_text("".join("\t".join(r) + "\n" for r in requests))
    return path


def wrk(url: str, requests_file: Path, lua: Path, *, connections: int, seconds: int) -> dict:
    """Saturation run; returns {"rate", "errors", "p99_ms"}."""
    threads = 2
    lua.write_text(REQUESTS_LUA)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
         "-s", str(lua), url, "--", str(requests_file), str(threads)],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rate": rate,
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def open_loop(
    host: str,
    port: int,
    path: str,
    requests: list[tuple[str, str, str, str]],
    *,
    rate: float,
    connections: int = 8,
) -> dict:
    """Send `requests` at `rate` per second over `connections` keep-alive connections.
    Latency counts from each request's scheduled time (no coordinated omission), so a
    server that falls behind shows its queueing. Returns {"rate", "p50_ms", "p99_ms",
    "errors", "samples"}: samples are (scheduled perf_counter time, latency in s) pairs."""
    samples: list[tuple[float, float]] = []
    errors = [0]
    lock = threading.Lock()
    interval = connections / rate
    start = time.perf_counter() + 0.2

    def run(index: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        mine = requests[index::connections]
        local, bad = [], 0
        for n, (event_id, ts, sig, body) in enumerate(mine):
            due = start + (n + index / connections) * interval
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            headers = {
                "Content-Type": "application/json",
                "webhook-id": event_id,
                "webhook-timestamp": ts,
                "webhook-signature": sig,
            }
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status >= 300:
                    bad += 1
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
            local.append((due, time.perf_counter() - due))
        conn.close()
        with lock:
            samples.extend(local)
            errors[0] += bad

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    from bench.report import percentile

    latencies = [latency for _, latency in samples]
    return {
        "samples": samples,
        "rate": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "errors": errors[0],
    }
