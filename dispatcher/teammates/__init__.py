"""Teammate channels' shared core: submission links, the outbox of notices, the no-account
submission page, uploaded files and the local mailbox. Every teammate channel (email, Slack,
webhook, Trello, Asana) uses these; what differs per channel is in its adapter."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The submission page (no login, CSRF-protected), the owner's pages, the job page's
    teammate panel, and the hook that enqueues staged notices after their commit."""
    from dispatcher.extensions import csrf
    from dispatcher.teammates import outbox, owner, page

    # The page's form checks its own CSRF token (FlaskForm), so a stale one is answered on
    # the teammate's page, their text kept, instead of on the owner's error page.
    csrf.exempt(page.bp)
    app.register_blueprint(page.bp)
    app.register_blueprint(owner.bp)
    outbox.init_app(app)
    app.jinja_env.globals["teammate_panel"] = owner.panel
