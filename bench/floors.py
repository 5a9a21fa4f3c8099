"""The bare floors the product is measured against, on the same stack and the same run.

- `post_order`: a bare RQ job that POSTs the sandbox adapter's order body to the same
  sandbox with one shared `requests.Session`, run by a plain `rq.SimpleWorker` (`worker`).
- `create_webhook_app`: a bare Flask app for gunicorn that verifies the same Standard
  Webhooks HMAC and inserts one row (SQLite in WAL with synchronous=FULL, or PostgreSQL).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sys
import time

import requests

_session = requests.Session()


def post_order(url: str, body: dict, key: str, api_key: str = "") -> str:
    """One order at the sandbox: what the product's worker does, without the product."""
    headers = {"Idempotency-Key": key, "Authorization": f"Bearer {api_key}"}
    response = _session.post(url, json=body, headers=headers, timeout=(1, 5))
    response.raise_for_status()
    return response.json()["id"]


def worker(redis_url: str, queue: str) -> None:
    """`python -m bench.floors worker <redis_url> <queue>`: a bare SimpleWorker."""
    from redis import Redis
    from rq import Queue, SimpleWorker

    conn = Redis.from_url(redis_url)
    SimpleWorker([Queue(queue, connection=conn)], connection=conn).work(logging_level="WARNING")


# -- webhook intake floor ----------------------------------------------------------------------
def create_webhook_app():
    """gunicorn 'bench.floors:create_webhook_app()' with FLOOR_DB and FLOOR_SECRET set."""
    from flask import Flask, request

    secret = os.environ["FLOOR_SECRET"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    insert = _inserter(os.environ["FLOOR_DB"])
    app = Flask(__name__)

    @app.post("/webhooks/<name>")
    @app.post("/webhooks/<name>/<path>")  # the product's URL shape: one per connection
    def receive(name: str, path: str = ""):
        body = request.get_data()
        msg_id = request.headers["webhook-id"]
        ts = request.headers["webhook-timestamp"]
        if abs(time.time() - int(ts)) > 300:
            return {"error": "timestamp"}, 401
        signed = f"{msg_id}.{ts}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
        given = [s.split(",", 1)[-1].encode() for s in request.headers["webhook-signature"].split()]
        if not any(hmac.compare_digest(expected, g) for g in given):
            return {"error": "signature"}, 401
        row_id = insert(name, msg_id, body.decode())
        return {"status": "accepted", "id": row_id}, 202

    return app


def null_app(environ, start_response):
    """gunicorn 'bench.floors:null_app': 200 for anything, body read and dropped. The open-loop
    generator's own latency at a rate, with no server work to speak of."""
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def _inserter(url: str):
    """A function inserting one (adapter, event_id, body) row, per thread connection."""
    import threading

    local = threading.local()
    if url.startswith("postgresql"):
        import psycopg
        from sqlalchemy.engine import make_url

        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        ddl = ("CREATE TABLE IF NOT EXISTS floor_events (id SERIAL PRIMARY KEY, adapter TEXT, "
               "event_id TEXT, body TEXT, UNIQUE (adapter, event_id))")  # fmt: skip
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(ddl)

        def insert(adapter: str, event_id: str, body: str) -> int:
            if not hasattr(local, "conn"):
                local.conn = psycopg.connect(dsn)
            with local.conn.transaction():
                return local.conn.execute(
                    "INSERT INTO floor_events (adapter, event_id, body) VALUES (%s, %s, %s) "
                    "RETURNING id",
                    (adapter, event_id, body),
                ).fetchone()[0]

        return insert

    import sqlite3

    path = url.removeprefix("sqlite:///")

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        # the first connections of every thread race to switch the new file to WAL; that switch
        # can fail at once with "database is locked" (no busy wait): try again, briefly
        for attempt in range(50):
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS floor_events (id INTEGER PRIMARY KEY, "
                    "adapter TEXT, event_id TEXT, body TEXT, UNIQUE (adapter, event_id))"
                )
                break
            except sqlite3.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.02)
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def insert(adapter: str, event_id: str, body: str) -> int:
        if not hasattr(local, "conn"):
            local.conn = connect()
        conn = local.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute(
                "INSERT INTO floor_events (adapter, event_id, body) VALUES (?, ?, ?)",
                (adapter, event_id, body),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return cur.lastrowid

    return insert


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker(sys.argv[2], sys.argv[3])
