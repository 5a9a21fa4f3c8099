"""The OpenAPI description and the offline docs page; error bodies are problem+json."""

from __future__ import annotations

import json
import re
import threading

import pytest
from werkzeug.serving import make_server

from .helpers import assert_problem

PATHS = {
    "/api/v1/goals": {"get", "post"},
    "/api/v1/goals/{goal_id}": {"get", "patch"},
    "/api/v1/goals/{goal_id}/tree": {"get"},
    "/api/v1/goals/{goal_id}/dispatch": {"post"},
    "/api/v1/goals/{goal_id}/jobs": {"post"},
    "/api/v1/jobs/{job_id}": {"get", "patch", "delete"},
    "/api/v1/jobs/{job_id}/split": {"post"},
    "/api/v1/jobs/{job_id}/delegate": {"post"},
    "/api/v1/jobs/{job_id}/keep": {"post"},
    "/api/v1/jobs/{job_id}/start": {"post"},
    "/api/v1/jobs/{job_id}/complete": {"post"},
    "/api/v1/jobs/{job_id}/reopen": {"post"},
    "/api/v1/jobs/{job_id}/dispatch": {"post"},
    "/api/v1/jobs/{job_id}/retry": {"post"},
    "/api/v1/jobs/{job_id}/cancel": {"post"},
    "/api/v1/jobs/{job_id}/events": {"get"},
    "/api/v1/deliveries": {"get"},
    "/api/v1/deliveries/{delivery_id}": {"get"},
    "/api/v1/deliveries/{delivery_id}/accept": {"post"},
    "/api/v1/deliveries/{delivery_id}/revise": {"post"},
    "/api/v1/deliveries/{delivery_id}/reject": {"post"},
    "/api/v1/tokens": {"get", "post"},
    "/api/v1/tokens/{token_id}": {"delete"},
}


def test_openapi_json_lists_every_path_with_security_and_schemas(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = json.loads(response.get_data(as_text=True))
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "Dispatcher API"
    api_paths = {p: set(ops) - {"parameters"} for p, ops in spec["paths"].items()}
    for path, methods in PATHS.items():
        assert methods <= api_paths.get(path, set()), path

    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert {"bearerAuth": []} in spec["security"]
    assert {} in spec["paths"]["/api/v1/tokens"]["post"]["security"]  # bootstrap: no token
    assert {t["name"] for t in spec["tags"]} >= {"Goals", "Jobs", "Deliveries", "Tokens"}

    schemas = spec["components"]["schemas"]
    assert "title" in schemas["GoalCreate"]["required"]
    assert schemas["GoalCreate"]["properties"]["budget_cents"]["minimum"] == 0
    assert schemas["TreeNode"]["properties"]["children"]["items"]["$ref"].endswith("/TreeNode")
    assert "token" in schemas["TokenCreated"]["properties"]
    assert "token" not in schemas["Token"]["properties"]
    assert "password" not in schemas["TokenCreated"]["properties"]

    # Every $ref resolves, and errors are documented as problem+json.
    text = json.dumps(spec)
    for ref in set(re.findall(r'"\$ref": "#/components/(\w+)/(\w+)"', text)):
        assert ref[1] in spec["components"][ref[0]], ref
    unprocessable = spec["paths"]["/api/v1/goals"]["post"]["responses"]["422"]["$ref"]
    name = unprocessable.rsplit("/", 1)[-1]
    assert "application/problem+json" in spec["components"]["responses"][name]["content"]


def test_docs_page_is_self_contained(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert 'data-spec-url="/api/openapi.json"' in page
    # Nothing is loaded from another host: no CDN, no external script or stylesheet; and
    # nothing inline, so the CSP allows only our own files (issue 11: strict CSP).
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert '<script src="/static/js/api-docs.js" defer></script>' in page
    assert "<style" not in page and "<script>" not in page and "style=" not in page
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    script = client.get("/static/js/api-docs.js")
    assert script.status_code == 200 and "fetch(specUrl" in script.get_data(as_text=True)
    script.close()


def test_unknown_api_paths_and_methods_are_problems(api):
    assert_problem(api.get("/api/v1/nothing-here"), 404)
    assert_problem(api.put("/api/v1/goals", json={}), 405)


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


@pytest.mark.browser
def test_docs_page_renders_the_spec_in_a_browser(live_server, output_dir):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
            ],
        )  # fmt: skip
        try:
            page = browser.new_page()
            outside: list[str] = []
            page.on(
                "request",
                lambda r: None if r.url.startswith(live_server) else outside.append(r.url),
            )
            page.goto(f"{live_server}/api/docs")
            page.wait_for_selector("details.op")
            assert page.title() == "Dispatcher API v1"
            paths = page.locator("details.op .path").all_inner_texts()
            for path in PATHS:
                assert path in paths, path
            # Open an operation: its body schema is shown field by field.
            create = page.locator("details.op", has_text="Create a goal").first
            create.locator("summary").click()
            fields = create.locator("td.mono").all_inner_texts()
            assert {"title", "budget_cents", "deadline"} <= set(fields)
            assert page.locator("#schema-TreeNode").is_visible()
            page.fill("#filter", "deliveries")
            assert page.locator("details.op:not([hidden])").count() == 5
            assert page.locator("#tag-Goals").is_hidden()
            accept = page.locator("details.op", has_text="/accept").first
            accept.locator("summary").click()
            assert "payout_cents" in accept.inner_text()
            # Descriptions are Markdown: backticks become code, never show as backticks.
            assert "`" not in page.locator("#auth").inner_text()
            assert page.locator("#auth code", has_text="Authorization: Bearer").count() == 1
            create_job = page.locator("details.op", has_text="/api/v1/goals/{goal_id}/jobs").first
            assert create_job.locator(".body code", has_text="parent_id").count() >= 1
            assert "`" not in page.locator("#content").inner_text()
            page.screenshot(path=str(output_dir / "api-docs.png"), full_page=False)
            assert outside == []
        finally:
            browser.close()
