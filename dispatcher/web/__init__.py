"""HTML pages: one blueprint per module."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    """Register every page blueprint, and the login machinery they rely on."""
    from dispatcher.web import auth, common, connections, goals, jobs, results, reviews, today

    auth.init_login(app)
    app.register_blueprint(common.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(goals.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(reviews.bp)
    app.register_blueprint(today.bp)
    app.register_blueprint(results.bp)
    app.register_blueprint(connections.bp)
    app.register_blueprint(__import__("dispatcher.web.people", fromlist=["bp"]).bp)
    app.register_blueprint(__import__("dispatcher.web.planning", fromlist=["bp"]).bp)
    app.register_blueprint(__import__("dispatcher.web.status", fromlist=["bp"]).bp)
    app.register_blueprint(__import__("dispatcher.web.live", fromlist=["bp"]).bp)
    app.register_blueprint(__import__("dispatcher.notifications.views", fromlist=["bp"]).bp)
