"""`dispatcher check` and `dispatcher stats` (issue 13)."""

from __future__ import annotations

from dispatch.helpers import delegated, make_owner

from dispatcher import create_app
from dispatcher.cli import control_socket, main
from dispatcher.dispatch import service
from dispatcher.planning import tree


def test_check_prints_every_check_and_passes(app):
    result = app.test_cli_runner().invoke(main, ["check"])
    assert result.exit_code == 0, result.output
    for name in ("database", "redis", "migrations", "public URL"):
        assert any(line.startswith(name) and " ok " in line for line in result.output.splitlines())


def test_check_fails_with_the_reason(app_config, tmp_path):
    fresh = create_app({**app_config, "database_url": f"sqlite:///{tmp_path / 'new.db'}"})
    result = fresh.test_cli_runner().invoke(main, ["check"])
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if x.startswith("migrations"))
    assert "FAIL" in line and "database at none" in line


def test_stats_counts_queues_and_open_dispatches(app):
    from fakes.connections import connect_sandbox

    owner = make_owner()
    connect_sandbox(owner.id)
    goal = tree.create_goal(owner.id, title="g", budget_cents=10_000)
    for _ in range(2):
        service.dispatch_job(delegated(goal))
    result = app.test_cli_runner().invoke(main, ["stats"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.output.splitlines() if line}
    assert rows["dispatch"][0] == "2"  # two send jobs queued
    assert rows["sandbox"] == ["2", "0"]  # two pending, none placed


def test_two_instances_get_their_own_gunicorn_control_socket(tmp_path):
    one, two = control_socket(tmp_path / "a", 5000), control_socket(tmp_path / "b", 5000)
    assert one != two and one != control_socket(tmp_path / "a", 5002)
    deep = tmp_path / ("x" * 120)
    assert len(control_socket(deep, 5000)) < 100  # unix socket paths are short
    assert control_socket(deep, 5000) == control_socket(deep, 5000)


def test_check_alive_needs_a_live_process_on_this_host(app):
    import socket

    from dispatcher.dispatch import liveness
    from dispatcher.ops.checks import scheduler_alive_name
    from dispatcher.queues import redis_connection

    runner = app.test_cli_runner()
    assert runner.invoke(main, ["check", "--alive"]).exit_code == 1
    liveness.mark_alive(redis_connection(), scheduler_alive_name(socket.gethostname()))
    result = runner.invoke(main, ["check", "--alive"])
    assert result.exit_code == 0 and "scheduler on" in result.output
