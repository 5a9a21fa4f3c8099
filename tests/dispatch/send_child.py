"""A separate process for test_send_batch's race: run send_dispatch for the given dispatch
ids, in the given order, from a given instant (as one more RQ worker would).

Usage: python send_child.py '<json: database_url, redis_url, instance, encryption_key,
sandbox_url, start_at, dispatch_ids>'. Prints {"outcomes": {id: outcome}} as JSON.
"""

from __future__ import annotations

import json
import sys
import time


def main(spec: dict) -> dict:
    from dispatcher import create_app
    from dispatcher.dispatch import send

    app = create_app(
        {
            "instance_path": spec["instance"],
            "database_url": spec["database_url"],
            "redis_url": spec["redis_url"],
            "encryption_key": spec["encryption_key"],
            "sandbox_url": spec["sandbox_url"],
            "dispatch_batch": spec["batch"],
            "testing": True,
        }
    )
    outcomes = {}
    with app.app_context():
        time.sleep(max(0.0, spec["start_at"] - time.time()))
        for dispatch_id in spec["dispatch_ids"]:
            result = send.send_dispatch(dispatch_id)
            outcomes[dispatch_id] = result if isinstance(result, str) else "retry"
    return {"outcomes": outcomes}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
