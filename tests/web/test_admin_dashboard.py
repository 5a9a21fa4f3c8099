"""Issue 13: the RQ dashboard at /admin/rq, for admin accounts only, on the app's Redis,
inside the app's security headers."""

from __future__ import annotations

import re

import pytest

from dispatcher.cli import main
from dispatcher.ops.admin import script_hashes, set_admin
from dispatcher.queues import get_queue

DASHBOARD = "/admin/rq/"
QUEUES_JSON = "/admin/rq/0/data/queues.json"


@pytest.fixture
def admin(ann, app):
    set_admin("Ann@Example.com", True)
    return ann


def test_a_visitor_not_logged_in_is_sent_to_log_in(client):
    for path in (DASHBOARD, QUEUES_JSON):
        answer = client.get(path)
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/login")


def test_an_owner_who_is_not_an_admin_gets_404(ann, client):
    for path in (DASHBOARD, QUEUES_JSON, "/admin/rq/0/view/workers"):
        assert client.get(path).status_code == 404
    assert client.post("/admin/rq/queue/dispatch/failed/empty").status_code == 404


def test_every_dashboard_route_is_404_for_an_owner_who_is_not_an_admin(app, ann, client):
    values = {"instance_number": "0", "queue_name": "dispatch", "registry_name": "failed",
              "per_page": "8", "order": "asc", "page": "1", "job_id": "dispatch-1",
              "filename": "js/jquery-3.5.1.min.js"}  # fmt: skip
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("rq_dashboard.")]
    assert len(rules) > 10
    for rule in rules:
        url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            answer = client.open(url, method=method, follow_redirects=True)
            assert answer.status_code == 404, f"{method} {url}"


def test_an_admin_sees_the_dashboard_inside_the_security_headers(admin, client):
    answer = client.get(DASHBOARD)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "RQ" in html
    policy = answer.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert answer.headers["X-Frame-Options"] == "DENY"
    inline = re.findall(r"<script type=\"text/javascript\">(.*?)</script>", html, re.DOTALL)
    assert inline, "the dashboard's inline code"
    hashes = script_hashes(html)
    assert len(hashes) == len(inline)
    for source in hashes:
        assert source in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    # Other pages keep the strict policy.
    assert "unsafe-eval" not in client.get("/").headers["Content-Security-Policy"]


def test_the_dashboard_lists_our_queues_on_the_apps_redis(admin, client):
    for name in ("dispatch", "inbound", "maintenance", "slow"):
        get_queue(name).enqueue("builtins.len", "abc")
    get_queue("slow").enqueue("builtins.len", "de")
    answer = client.get(QUEUES_JSON)
    assert answer.status_code == 200
    counts = {q["name"]: q["count"] for q in answer.get_json()["queues"]}
    assert counts == {"dispatch": 1, "inbound": 1, "maintenance": 1, "slow": 2}
    assert client.get("/admin/rq/0/view/workers").status_code == 200


def test_another_redis_instance_number_is_not_served(admin, client):
    assert client.get("/admin/rq/1/data/queues.json").status_code == 404


def test_admin_grant_and_revoke_from_the_command_line(ann, app, client):
    runner = app.test_cli_runner()
    granted = runner.invoke(main, ["admin", "grant", "ann@example.com"])
    assert granted.exit_code == 0, granted.output
    assert "is an admin" in granted.output
    assert client.get(DASHBOARD).status_code == 200
    revoked = runner.invoke(main, ["admin", "revoke", "ann@example.com"])
    assert revoked.exit_code == 0 and "not an admin" in revoked.output
    assert client.get(DASHBOARD).status_code == 404
    unknown = runner.invoke(main, ["admin", "grant", "nobody@example.com"])
    assert unknown.exit_code == 1 and "no owner" in unknown.output
