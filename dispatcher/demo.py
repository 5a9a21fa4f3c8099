"""Demo data from the source articles: one guest post, broken down as article 002 does it."""

from __future__ import annotations

from datetime import date, timedelta

from flask import current_app
from sqlalchemy import select

from dispatcher import connections
from dispatcher.config import PRODUCTION
from dispatcher.extensions import db
from dispatcher.models import Connection, Owner
from dispatcher.planning import tree
from dispatcher.sandbox import accounts
from dispatcher.sandbox.store import Store

DEMO_EMAIL = "demo@dispatcher.local"
SANDBOX_LABEL = "Sandbox (demo)"
DEMO_PASSWORD = "demo-pass-123"

SITES = [
    "growthweekly.example", "smallbizdaily.example", "marketerhub.example",
    "contentcraft.example", "seosignals.example", "founderfiles.example",
    "brandbuilders.example", "localreach.example", "emailwins.example",
    "socialsprout.example", "b2bplaybook.example", "nichenotes.example",
]  # fmt: skip


def seed_demo() -> bool:
    """Create the demo owner, its sandbox connection and a guest-post campaign goal; False if
    the owner already exists (its sandbox connection is still made if it has none)."""
    existing = db.session.scalars(select(Owner).where(Owner.email == DEMO_EMAIL)).first()
    if existing is not None:
        connect_demo_sandbox(existing.id)
        return False
    owner = Owner(email=DEMO_EMAIL, name="Demo Owner")
    owner.set_password(DEMO_PASSWORD)
    # The demo runs on one machine for one person: its owner may open the RQ dashboard. Not
    # in production, where the demo's password is public knowledge.
    owner.is_admin = current_app.config["SETTINGS"].env != PRODUCTION
    db.session.add(owner)
    db.session.commit()
    connect_demo_sandbox(owner.id)
    today = date.today()
    goal = tree.create_goal(
        owner.id,
        title="52 guest posts this year",
        why="Guest posts bring backlinks and referral visits; one a week keeps it steady.",
        metric_name="guest posts published",
        baseline=0,
        target=52,
        deadline=today + timedelta(days=365),
        budget_cents=50_000,
        currency="USD",
    )
    week = tree.add_job(goal, title="Guest post #1 (this week)", estimate_minutes=None)
    pitch = tree.add_job(goal, parent=week, title="Pitch 12 sites")
    for site in SITES:
        tree.add_job(
            goal,
            parent=pitch,
            title=f"Pitch email to {site}",
            brief=f"Find the editor at {site}, read two recent posts, send a short pitch "
            "with three title ideas.",
            acceptance_criteria=["names the editor", "three title ideas", "sent from our domain"],
            deliverable_kind="text",
            estimate_minutes=15,
            price_cents=300,
            mode="delegate",
            channel="sandbox",
        )
    followups = tree.add_job(goal, parent=week, title="Follow up (2-3 emails)")
    for n in (1, 2, 3):
        tree.add_job(
            goal,
            parent=followups,
            title=f"Follow-up email {n}",
            acceptance_criteria=["polite, under 80 words"],
            estimate_minutes=5,
            mode="keep",
        )
    write = tree.add_job(goal, parent=week, title="Write the post")
    tree.add_job(
        goal,
        parent=write,
        title="Outline",
        acceptance_criteria=["headline", "5-7 section heads", "call to action"],
        estimate_minutes=20,
        mode="keep",
        planned_for=today,
    )
    for n in range(1, 9):
        tree.add_job(
            goal,
            parent=write,
            title=f"Draft block {n} (100 words)",
            acceptance_criteria=["100 words", "follows the outline"],
            estimate_minutes=10,
            mode="keep",
            planned_for=today + timedelta(days=(n - 1) // 3),
        )
    tree.add_job(
        goal,
        parent=write,
        title="Edit the draft",
        brief="Proofread for grammar and flow; check every claim has a source.",
        acceptance_criteria=["no typos", "links checked", "under 1,000 words"],
        deliverable_kind="text",
        estimate_minutes=30,
        price_cents=1500,
        mode="delegate",
        channel="sandbox",
    )
    tree.add_job(
        goal,
        parent=week,
        title="Send the final post",
        acceptance_criteria=["sent to the editor who said yes"],
        estimate_minutes=10,
        mode="keep",
    )
    tree.add_job(
        goal,
        parent=week,
        title="Confirm it was published",
        brief="Check the post is live and links back to us; record the URL.",
        acceptance_criteria=["live URL", "backlink present"],
        deliverable_kind="url",
        estimate_minutes=5,
        price_cents=200,
        mode="delegate",
        channel="sandbox",
    )
    return True


def connect_demo_sandbox(owner_id: int) -> Connection:
    """In development, the demo owner's sandbox connection: an account made in the local
    sandbox's own file (instance/sandbox.db, as its dashboard would), with this connection's
    webhook URL and secret registered there. Nothing is shared with any other owner."""
    found = connections.for_adapter(owner_id, "sandbox")
    if found is not None:
        return found
    settings = current_app.config["SETTINGS"]
    store = Store(settings.instance_path / "sandbox.db")
    try:
        accounts.install(store)
        account = accounts.create(store, "demo")
        connection, secret = connections.create(
            owner_id, "sandbox", SANDBOX_LABEL, {"api_key": account["api_key"]}
        )
        accounts.set_webhook(store, account["id"], connections.webhook_url(connection), secret)
    finally:
        store.close()
    db.session.commit()
    return connection
