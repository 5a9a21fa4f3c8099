"""The sandbox marketplace's HTTP API (JSON, problem+json errors) and a tiny HTML page.

POST /accounts                                 sign up: {"name"} -> the account and its API key
GET  /account, PUT /account/webhook            the account; register {"url", "secret"}
POST /orders                                   create (Idempotency-Key header required)
GET  /orders?idempotency_key=K                 look an order up by key ({"orders": [...]})
GET  /orders/<id>, POST /orders/<id>/cancel
POST /orders/<id>/submissions/<sid>/accept     {"payout_cents": N}
POST /orders/<id>/submissions/<sid>/reject     {"reason": "..."}
POST /orders/<id>/submissions/<sid>/revision   {"feedback": "..."}
GET  /orders/<id>/events                       every event of the order, as the webhooks carry it
                                               (what clients poll; in polling-only mode,
                                               send_webhooks=false, the only way)
GET|POST /_control                             fault and timing knobs; GET /_stats the records

Every /account and /orders call authenticates with ``Authorization: Bearer <API key>`` and
sees only that account's orders (another account's order is a 404).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, render_template_string, request
from werkzeug.exceptions import HTTPException

from dispatcher.errors import ConfigurationError
from dispatcher.sandbox import accounts
from dispatcher.sandbox.market import Marketplace, SandboxError
from dispatcher.sandbox.options import OptionsError, SandboxOptions
from dispatcher.sandbox.validation import MAX_PRICE_CENTS, validate_order

EXTENSION = "sandbox"


def create_sandbox_app(db_path: str | Path, base_url: str | None = None, **options: Any) -> Flask:
    """Build the sandbox app on its SQLite file. Starts no thread: see server.py for that."""
    opts = SandboxOptions()
    opts.update(options)
    market = Marketplace(db_path, opts, base_url=base_url)
    app = Flask(__name__)
    app.json.sort_keys = False
    app.extensions[EXTENSION] = market
    _routes(app, market)
    return app


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    response = jsonify(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    )
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise SandboxError(422, "Invalid request", "the body must be a JSON object")
    return body


def _text_field(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise SandboxError(
            422,
            "Invalid request",
            f"{name} is required",
            errors={name: "must be a non-empty string"},
        )
    return value


def _routes(app: Flask, market: Marketplace) -> None:
    def base() -> str:
        return request.host_url.rstrip("/")

    @app.before_request
    def _learn_base_url() -> None:
        if market.base_url is None:
            market.base_url = base()

    @app.before_request
    def _authenticate():
        if not request.path.startswith(("/orders", "/account/", "/account")) or (
            request.path == "/accounts"
        ):
            return None
        try:
            g.account = accounts.authenticate(market.store, request.headers.get("Authorization"))
        except accounts.AuthError as exc:
            response = problem(401, "Unauthorized", str(exc))
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        order_id = request.view_args.get("order_id") if request.view_args else None
        if order_id is not None:
            market.check_owner(order_id, g.account["id"])
        return None

    @app.post("/accounts")
    def create_account():
        name = _text_field(_json_body(), "name")
        return accounts.create(market.store, name.strip()[:120]), 201

    @app.get("/account")
    def get_account():
        return accounts.as_json(g.account)

    @app.put("/account/webhook")
    def set_webhook():
        body = _json_body()
        url, secret = body.get("url") or "", _text_field(body, "secret")
        if not isinstance(url, str):
            raise SandboxError(422, "Invalid request", "url must be a string", errors={"url": "?"})
        try:
            accounts.set_webhook(market.store, g.account["id"], url, secret)
        except (ValueError, ConfigurationError) as exc:
            raise SandboxError(
                422, "Invalid request", f"secret: {exc}", errors={"secret": "not a whsec_ secret"}
            ) from None
        row = market.store.one("SELECT * FROM accounts WHERE id = ?", (g.account["id"],))
        return accounts.as_json(row)

    @app.errorhandler(SandboxError)
    def _refused(exc: SandboxError):
        return problem(exc.status, exc.title, exc.detail, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        return problem(exc.code or 500, exc.name, exc.description or exc.name)

    @app.post("/orders")
    def create_order():
        key = (request.headers.get("Idempotency-Key") or "").strip()
        if not key:
            return problem(400, "Idempotency-Key required", "send an Idempotency-Key header")
        if len(key) > 255:
            return problem(400, "Idempotency-Key too long", "at most 255 characters")
        opts, dice = market.options, market.dice
        if dice.chance(opts.rate_limit_rate):
            market.store.bump("fault_rate_limited")
            response = problem(429, "Too many requests", "slow down (injected fault)")
            response.headers["Retry-After"] = "1"
            return response
        if dice.chance(opts.fail_rate):
            market.store.bump("fault_failed")
            return problem(503, "Unavailable", "try again later (injected fault, nothing created)")
        body = request.get_json(silent=True)
        fields, errors = validate_order(body)
        if errors:
            return problem(422, "Invalid order", _summary(errors), errors=errors)
        order, created = market.create_order(
            key, body, fields, base_url=base(), account_id=g.account["id"]
        )
        if dice.chance(opts.fail_after_create_rate):
            market.store.bump("fault_failed_after_create")
            return problem(503, "Unavailable", "try again later (injected fault)")
        if dice.chance(opts.stall_rate):
            market.store.bump("fault_stalled")
            time.sleep(opts.stall_seconds)
        return order, 201 if created else 200

    @app.get("/orders")
    def list_orders():
        key = request.args.get("idempotency_key")
        return {"orders": market.find_orders(key, base_url=base(), account_id=g.account["id"])}

    @app.get("/orders/<order_id>")
    def get_order(order_id: str):
        return market.get_order(order_id, base_url=base())

    @app.post("/orders/<order_id>/cancel")
    def cancel(order_id: str):
        return market.cancel(order_id, base_url=base())

    @app.get("/orders/<order_id>/events")
    def events(order_id: str):
        return {"events": market.events(order_id)}

    @app.post("/orders/<order_id>/submissions/<sub_id>/accept")
    def accept(order_id: str, sub_id: str):
        payout = _json_body().get("payout_cents")
        if isinstance(payout, bool) or not isinstance(payout, int):
            raise SandboxError(
                422,
                "Invalid request",
                "payout_cents is required",
                errors={"payout_cents": "must be a whole number of cents"},
            )
        if not 0 <= payout <= MAX_PRICE_CENTS:
            raise SandboxError(
                422,
                "Invalid request",
                f"payout_cents must be between 0 and {MAX_PRICE_CENTS}",
                errors={"payout_cents": "out of range"},
            )
        return market.accept(order_id, sub_id, payout, base_url=base())

    @app.post("/orders/<order_id>/submissions/<sub_id>/reject")
    def reject(order_id: str, sub_id: str):
        reason = _text_field(_json_body(), "reason")
        return market.reject(order_id, sub_id, reason, base_url=base())

    @app.post("/orders/<order_id>/submissions/<sub_id>/revision")
    def revision(order_id: str, sub_id: str):
        feedback = _text_field(_json_body(), "feedback")
        return market.request_revision(order_id, sub_id, feedback, base_url=base())

    @app.get("/_control")
    def get_control():
        return market.options.as_dict()

    @app.post("/_control")
    def set_control():
        try:
            return market.set_options(_json_body())
        except OptionsError as exc:
            return problem(422, "Invalid options", str(exc), errors=exc.errors)

    @app.post("/_control/orders/<order_id>/expire")
    def expire_open_slots(order_id: str):
        """Test control: the order's deadline passes now, part-way through."""
        return {"expired_slots": market.expire_open_slots(order_id)}

    @app.get("/_stats")
    def stats():
        return market.stats()

    @app.get("/deliveries/<sub_id>")
    def delivery(sub_id: str):
        row = market.store.one("SELECT * FROM submissions WHERE id = ?", (sub_id,))
        if row is None:
            return problem(404, "Not found", f"no submission {sub_id}")
        return render_template_string(DELIVERY_PAGE, sub=row)

    @app.get("/")
    def index():
        orders = market.find_orders(None, base_url=base(), limit=200)
        return render_template_string(INDEX_PAGE, orders=orders, options=market.options)


def _summary(errors: dict[str, str]) -> str:
    return "; ".join(f"{name} {reason}" for name, reason in errors.items())


INDEX_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sandbox marketplace</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border-bottom:1px solid #ddd;padding:.3em .8em;text-align:left}</style></head>
<body><h1>Sandbox marketplace</h1>
<p>A simulated platform: workers take orders after {{ options.take_delay }} s and deliver
{{ options.deliver_delay }} s later{% if options.pause_workers %} (workers paused){% endif %}.
Records: <a href="/_stats">/_stats</a>, knobs: <a href="/_control">/_control</a>.</p>
<table><tr><th>order</th><th>status</th><th>title</th><th>price</th><th>assignments</th>
<th>submissions</th><th>created</th></tr>
{% for o in orders %}<tr><td><a href="{{ o.url }}">{{ o.id }}</a></td><td>{{ o.status }}</td>
<td>{{ o.title }}</td><td>{{ '%.2f' % (o.price_cents / 100) }} {{ o.currency }}</td>
<td>{{ o.assignments }}</td><td>{{ o.submissions | length }}</td><td>{{ o.created_at }}</td></tr>
{% else %}<tr><td colspan="7">No orders yet.</td></tr>{% endfor %}</table></body></html>
"""

DELIVERY_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ sub.id }}</title></head>
<body><h1>Submission {{ sub.id }}</h1><p>by {{ sub.worker_id }}, {{ sub.status }}</p>
<pre>{{ sub.content }}</pre></body></html>
"""
