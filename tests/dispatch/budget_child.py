"""A separate process for test_budget_race: dispatch the given jobs at a given instant.

Usage: python budget_child.py '<json: database_url, redis_url, instance, start_at, job_ids>'
Prints {"ok": [...], "refused": [...]} as JSON.
"""

from __future__ import annotations

import json
import sys
import time


def main(spec: dict) -> dict:
    from dispatcher import create_app
    from dispatcher.dispatch import service
    from dispatcher.errors import BudgetExceeded
    from dispatcher.extensions import db
    from dispatcher.models import MicroJob

    app = create_app(
        {
            "instance_path": spec["instance"],
            "database_url": spec["database_url"],
            "redis_url": spec["redis_url"],
            "encryption_key": spec["encryption_key"],
            "testing": True,
        }
    )
    ok, refused = [], []
    with app.app_context():
        jobs = [db.session.get(MicroJob, job_id) for job_id in spec["job_ids"]]
        time.sleep(max(0.0, spec["start_at"] - time.time()))
        for job in jobs:
            try:
                service.dispatch_job(job)
                ok.append(job.id)
            except BudgetExceeded:
                db.session.rollback()
                refused.append(job.id)
    return {"ok": ok, "refused": refused}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
