"""Sampling profiles (py-spy) of the product's own processes under load, as `dispatcher up`
runs them: the dispatch worker draining a batch of orders to the sandbox, and the web process
taking a burst of signed webhooks. Wall-clock samples, waiting included (`--idle`), so the
figure shows where a job's time goes, not only its CPU.

Writes a collapsed-stack file per process under bench/results/profiles/ (any flame-graph
tool reads it), and prints the frames that take the most of the samples spent on the work.

    .venv/bin/python -m bench.profile_processes [--jobs 1500] [--seconds 8] [--only worker|web]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "results" / "profiles"
#: --cpu: sample only threads on a CPU (where the CPU goes, not where the time goes)
CPU_ONLY = "--cpu" in sys.argv


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def record(pid: int, seconds: float, name: str, *, subprocesses: bool = False) -> Path:
    """Sample `pid` for `seconds`: a collapsed-stack file and an SVG flame graph."""
    OUT.mkdir(parents=True, exist_ok=True)
    raw = OUT / f"{name}.txt"
    extra = ["--subprocesses"] if subprocesses else []
    if not CPU_ONLY:
        extra.append("--idle")
    subprocess.run(
        [py_spy(), "record", "--rate", "250", "--duration", str(int(seconds)),
         "--format", "raw", "--output", str(raw), "--pid", str(pid), "--nonblocking", *extra],
        check=True, capture_output=True,
    )  # fmt: skip
    return raw


#: the frame every sample of the work itself passes through (idle threads and waits for
#: work are left out, so shares are of the time spent on jobs or requests)
FOCUS = {"worker": "BaseWorker.perform_job", "web": "Flask.__call__"}  # the fast path: under it


def summarize(raw: Path, top: int, focus: str) -> list[tuple[str, float]]:
    """Share of the samples under `focus` per frame (inclusive), from a collapsed-stack
    file."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or focus not in stack:
            continue
        stack = stack[stack.index(focus) :]
        n = int(count)
        total += n
        seen = set()
        for frame in stack.split(";"):
            name = frame.split(" (")[0] + " " + _where(frame)
            if name not in seen:
                seen.add(name)
                inclusive[name] += n
    return [(name, 100.0 * n / total) for name, n in inclusive.most_common(top)]


def _where(frame: str) -> str:
    if "(" not in frame:
        return ""
    loc = frame.split(" (", 1)[1].rstrip(")")
    path = loc.split(":")[0]
    for marker in ("site-packages/", "/work/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"({path})"


def profile_worker(jobs: int) -> Path:
    from bench.bench_dispatch import Bench
    from dispatcher.dispatch import send, service
    from dispatcher.extensions import db
    from dispatcher.models import MicroJob

    bench = Bench(None)
    try:
        bench.start()
        product, _floor = bench.start_workers(1)
        bench.drain_product(50, product)
        ids = bench.make_jobs(jobs)
        dispatches = [service.dispatch_job(db.session.get(MicroJob, i), commit=False) for i in ids]
        db.session.commit()
        dispatch_ids = [d.id for d in dispatches]
        db.session.remove()
        seconds = max(3.0, jobs / 120)
        result: dict[str, Path] = {}
        sampler = threading.Thread(
            target=lambda: result.setdefault("raw", record(product[0], seconds, "worker"))
        )
        sampler.start()
        time.sleep(0.5)
        for dispatch_id in dispatch_ids:
            send.enqueue_send(dispatch_id)
        sampler.join()
        return result["raw"]
    finally:
        bench.stop()


def profile_web(seconds: int) -> Path:
    from bench import loadgen
    from bench.bench_intake import Bench

    bench = Bench(None)
    try:
        bench.start()
        master = bench.web.pid
        result: dict[str, Path] = {}
        sampler = threading.Thread(
            target=lambda: result.setdefault(
                "raw", record(master, seconds, "web", subprocesses=True)
            )
        )
        sampler.start()
        time.sleep(0.5)
        requests = loadgen.signed_requests(bench.secret, 3000 * seconds)
        path = loadgen.write_requests(bench.dir / "web.tsv", requests)
        loadgen.wrk(f"http://127.0.0.1:{bench.ports['product']}{bench.path}", path,
                    bench.dir / "requests.lua", connections=8, seconds=seconds - 1)  # fmt: skip
        sampler.join()
        return result["raw"]
    finally:
        bench.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1500)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--only", choices=("worker", "web"))
    parser.add_argument("--cpu", action="store_true", help="CPU samples only, waits left out")
    args = parser.parse_args()
    runs = {"worker": lambda: profile_worker(args.jobs), "web": lambda: profile_web(args.seconds)}
    for name, run in runs.items():
        if args.only and name != args.only:
            continue
        raw = run()
        print(f"\n{name}: share of wall-clock samples (inclusive) under {FOCUS[name]}, {raw}")
        for frame, share in summarize(raw, args.top, FOCUS[name]):
            print(f"  {share:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
