"""The API shows a job's text version and the version each dispatch carries."""

from __future__ import annotations


def test_jobs_and_dispatches_show_their_text_version(api, new_job):
    job = new_job("Write v1", price_cents=500)
    api.post(f"/api/v1/jobs/{job['id']}/delegate", json={"channel": "sandbox"})
    dispatch = api.post(f"/api/v1/jobs/{job['id']}/dispatch").get_json()
    assert dispatch["job_version"] == 1
    edited = api.patch(f"/api/v1/jobs/{job['id']}", json={"title": "Write v2"}).get_json()
    assert (edited["title"], edited["version"]) == ("Write v2", 2)
