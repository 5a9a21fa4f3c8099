"""Counters written by several processes, in one folder or in sub-folders of a shared volume
(one per container), add up in one scrape (issue 13)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from dispatcher.ops.metrics import FolderCollector

WRITE = textwrap.dedent(
    """
    from dispatcher.ops.metrics import DISPATCHED
    DISPATCHED.labels("sandbox", "placed").inc({n})
    """
)


def _write_from_a_process(folder, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    subprocess.run([sys.executable, "-c", WRITE.format(n=n)], env=env, check=True, timeout=60)


def test_processes_and_containers_add_up(tmp_path):
    _write_from_a_process(tmp_path, 2)  # the web's own processes, at the top
    _write_from_a_process(tmp_path, 3)
    _write_from_a_process(tmp_path / "worker-dispatch", 5)  # another container
    samples = {
        (s.name, s.labels.get("outcome")): s.value
        for metric in FolderCollector(str(tmp_path)).collect()
        for s in metric.samples
    }
    assert samples[("dispatcher_dispatch_attempts_total", "placed")] == 10
