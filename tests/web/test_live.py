"""Issue 11: live updates. A committed Event is published to Redis once, a rolled-back one
never; the stream server (its own asyncio process in production, a thread here) sends each
owner only their own changes, to 50 open streams at once, within 2 s."""

from __future__ import annotations

import json
import socket
import time
from contextlib import contextmanager

import pytest
import redis
from fakes.live_fixture import run_stream_server

from dispatcher import lifecycle
from dispatcher.extensions import db
from dispatcher.live.publish import channel_for
from dispatcher.live.server import make_token, read_token
from dispatcher.planning import tree

from .conftest import page


@contextmanager
def subscribed(redis_url: str, owner_id: int):
    conn = redis.Redis.from_url(redis_url)
    pubsub = conn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel_for(owner_id))
    try:
        yield pubsub
    finally:
        pubsub.close()
        conn.close()


def _messages(pubsub, wait: float = 1.0) -> list[dict]:
    out, deadline = [], time.monotonic() + wait
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message:
            out.append(json.loads(message["data"]))
    return out


def test_a_committed_change_is_published_once(app, redis_url, ann, make_job):
    job = make_job("Set up analytics", mode="keep")
    with subscribed(redis_url, ann.id) as pubsub:
        tree.act(job, "complete")
        (message,) = _messages(pubsub)
    assert (message["job"], message["kind"], message["from"], message["to"]) == (
        job.id, "complete", "draft", "done",
    )  # fmt: skip
    assert (message["to_label"], message["to_class"]) == ("done", "ok")


def test_a_rolled_back_change_is_not_published(app, redis_url, ann, make_job):
    job = make_job("Set up analytics", mode="keep")
    with subscribed(redis_url, ann.id) as pubsub:
        lifecycle.transition(job, "start")
        db.session.flush()
        db.session.rollback()
        assert _messages(pubsub, 0.5) == []


def test_the_token_names_its_owner_and_expires(app):
    secret = app.config["SETTINGS"].secret_key
    token = make_token(secret, 7)
    assert read_token(secret, token) == 7
    assert read_token("another secret", token) is None
    assert read_token(secret, token + "x") is None
    assert read_token(secret, token, max_age=-1) is None


# --- the stream server ---------------------------------------------------------------------


@pytest.fixture
def stream_server(app, redis_url):
    secret = app.config["SETTINGS"].secret_key
    with run_stream_server(redis_url, secret, "http://127.0.0.1:5000") as server:
        yield server


def _open_stream(port: int, token: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"GET /events?token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def _read_until(sock: socket.socket, needle: bytes, timeout: float) -> bytes:
    data, deadline = b"", time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def _health(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        return _read_until(sock, b"streams", 5).decode()


def test_a_change_reaches_the_owners_stream_within_2_s(app, stream_server, ann, make_job):
    secret = app.config["SETTINGS"].secret_key
    job = make_job("Set up analytics", mode="keep")
    mine = _open_stream(stream_server.port, make_token(secret, ann.id))
    other = _open_stream(stream_server.port, make_token(secret, ann.id + 1000))
    try:
        head = _read_until(mine, b": open\n\n", 5)
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert b"Content-Type: text/event-stream" in head
        assert b"Access-Control-Allow-Origin: http://127.0.0.1:5000" in head
        _read_until(other, b": open\n\n", 5)

        start = time.monotonic()
        tree.act(job, "complete")
        data = _read_until(mine, b"\n\n", 2.0)
        assert time.monotonic() - start < 2.0
        assert b"event: change" in data
        change = json.loads(data.split(b"data: ", 1)[1].split(b"\n", 1)[0])
        assert (change["job"], change["to"]) == (job.id, "done")
        assert _read_until(other, b"event: change", 0.5) == b""  # nobody else's changes
    finally:
        mine.close()
        other.close()


def test_a_bad_token_is_refused(stream_server):
    sock = _open_stream(stream_server.port, "not-a-token")
    try:
        answer = _read_until(sock, b"\n\n", 5)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 403")


def test_fifty_open_streams_all_get_the_change(app, stream_server, ann, make_job):
    secret = app.config["SETTINGS"].secret_key
    token = make_token(secret, ann.id)
    job = make_job("Set up analytics", mode="keep")
    streams = [_open_stream(stream_server.port, token) for _ in range(50)]
    try:
        for sock in streams:
            assert _read_until(sock, b": open\n\n", 5).startswith(b"HTTP/1.1 200")
        assert "ok 50 streams" in _health(stream_server.port)
        start = time.monotonic()
        tree.act(job, "complete")
        got = [_read_until(sock, b"\n\n", 2.0) for sock in streams]
        elapsed = time.monotonic() - start
    finally:
        for sock in streams:
            sock.close()
    assert all(b'"to": "done"' in data for data in got)
    assert elapsed < 2.0, elapsed


# --- the pages ------------------------------------------------------------------------------


@pytest.fixture
def app_config(app_config):
    return app_config | {"live_url": "http://127.0.0.1:5002"}


def test_pages_name_the_stream_with_a_token_for_their_owner(app, client, ann, goal, make_job):
    html = page(client.get(f"/goals/{goal.id}"))
    assert 'data-live-url="http://127.0.0.1:5002/events?token=' in html
    token = html.split("/events?token=", 1)[1].split('"', 1)[0]
    assert read_token(app.config["SETTINGS"].secret_key, token) == ann.id
    assert "/static/js/live.js" in html
    job = make_job("Find blogs", mode="keep")
    assert f'data-status-of="{job.id}"' in page(client.get(f"/goals/{goal.id}"))
    assert f'data-timeline-of="{job.id}"' in page(client.get(f"/jobs/{job.id}"))


def test_the_badge_count_is_served(client, ann, delivered):
    delivered()
    response = client.get("/live/badge")
    assert response.get_json() == {"review": 1}
    client.post("/logout")
    assert client.get("/live/badge").status_code in (302, 401)
