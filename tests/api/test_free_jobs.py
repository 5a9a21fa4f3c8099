"""Issue 11: a paid channel refuses a job with no price unless the job is stated free (422)."""

from __future__ import annotations

from .helpers import assert_problem


def _delegated(api, new_job, **fields) -> dict:
    return new_job("Find 20 blogs", mode="delegate", channel="sandbox", **fields)


def test_a_paid_channel_refuses_a_job_with_no_price(api, goal, new_job):
    job = _delegated(api, new_job)
    body = assert_problem(api.post(f"/api/v1/jobs/{job['id']}/dispatch"), 422)
    assert "no price" in body["detail"]
    assert list(body["errors"]["json"]) == ["price_cents"]
    after = api.get(f"/api/v1/jobs/{job['id']}").get_json()
    assert after["status"] == "draft" and after["reserved_cents"] == 0


def test_a_job_stated_free_goes_out(api, goal, new_job):
    job = _delegated(api, new_job, free=True)
    assert job["free"] is True
    response = api.post(f"/api/v1/jobs/{job['id']}/dispatch")
    assert response.status_code in (200, 201, 202), response.get_json()
    assert api.get(f"/api/v1/jobs/{job['id']}").get_json()["status"] == "queued"


def test_free_and_a_price_contradict(api, goal, new_job):
    body = assert_problem(
        api.post(
            f"/api/v1/goals/{goal['id']}/jobs",
            json={"title": "x", "free": True, "price_cents": 500},
        ),
        422,
    )
    assert "price_cents" in body["errors"]["json"]

    priced = new_job("Priced", price_cents=500)
    body = assert_problem(api.patch(f"/api/v1/jobs/{priced['id']}", json={"free": True}), 422)
    assert "free" in body["errors"]["json"]
    assert api.get(f"/api/v1/jobs/{priced['id']}").get_json()["free"] is False
