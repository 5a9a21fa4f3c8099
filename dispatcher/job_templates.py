"""RQ job hashes built from a template: the fields RQ's `enqueue` writes, computed once per
(queue, function, options), with only the call's own data and description made per job.

Why: building an RQ `Job` per webhook (`Queue.create_job`, then `to_dict`) cost about as
much CPU as the rest of queueing it (`bench/profile_intake.py`). The hash is RQ's own: a
template comes from `create_job` and `to_dict` themselves; a job's `data` is what `Job.data`
serializes, compressed as `to_dict` does; fields `to_dict` writes empty are left out, since
`Job.restore` reads a missing one as the same default.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from rq import Queue
from rq.job import Retry
from rq.utils import get_call_string, now

#: the per-job fields, never taken from the template
PER_JOB = frozenset({"data", "description", "created_at", "enqueued_at"})
#: the length `Job.get_call_string` cuts each argument's repr to
_ARG_REPR_LENGTH = 75


@dataclass(frozen=True)
class JobTemplate:
    """What every job of one (queue, function, options) shares; `fields` are the hash's
    field/value items, encoded."""

    func_name: str
    instance: Any
    serializer: Any
    description_given: str | None
    fields: tuple[bytes, ...]
    #: the queue's list, and RQ's set of every queue
    queue_key: str
    queues_key: str

    def data(self, args: tuple[Any, ...]) -> bytes:
        """`Job.data` for a call with these positional arguments, compressed as stored."""
        return zlib.compress(self.serializer.dumps((self.func_name, self.instance, args, {})))

    def description(self, args: tuple[Any, ...]) -> str:
        if self.description_given is not None:
            return self.description_given
        return get_call_string(self.func_name, args, {}, max_length=_ARG_REPR_LENGTH) or ""


_templates: dict[Hashable, JobTemplate] = {}
_lock = threading.Lock()
#: templates kept per process; a caller whose options vary without end gets no cache benefit
#: but no leak either
MAX_TEMPLATES = 256


def template(
    queue_name: str,
    func: str | Callable[..., Any],
    options: dict[str, Any],
    queue: Callable[[], Queue],
) -> JobTemplate:
    """The template of `queue().enqueue_call(func, ..., **options)`'s job (`job_timeout` as
    `enqueue` takes it), from RQ itself the first time, remembered after. `queue` makes the
    named queue (with its default serializer), only when a template is built."""
    key = _key(queue_name, func, options)
    found = _templates.get(key) if key is not None else None
    if found is not None:
        return found
    built = _build(queue(), func, options)
    if key is not None:
        with _lock:
            if len(_templates) >= MAX_TEMPLATES:
                _templates.clear()
            _templates[key] = built
    return built


def _build(queue: Queue, func: str | Callable[..., Any], options: dict[str, Any]) -> JobTemplate:
    options = dict(options)
    timeout = options.pop("job_timeout", None)
    job = queue.create_job(func, args=(), job_id="template", timeout=timeout, **options)
    job.origin = queue.name
    fields: list[bytes] = []
    for name, value in job.to_dict().items():
        if name in PER_JOB or value is None or value == "":
            continue
        fields += [name.encode(), _encode(value)]
    return JobTemplate(
        func_name=job.func_name,
        instance=job.instance,
        serializer=job.serializer,
        description_given=options.get("description"),
        fields=tuple(fields),
        queue_key=queue.key,
        queues_key=queue.redis_queues_keys,
    )


def stamp() -> bytes:
    """Now, as RQ's `utcformat` writes it (isoformat: the same text, without strftime's cost)."""
    return now().replace(tzinfo=None).isoformat(timespec="microseconds").encode() + b"Z"


def _encode(value: Any) -> bytes:
    """A hash value as redis-py would send it."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        raise TypeError(f"RQ wrote a bool ({value!r}): redis-py refuses one")
    if isinstance(value, int | float):
        return repr(value).encode()
    return str(value).encode()


def _key(
    queue_name: str, func: str | Callable[..., Any], options: dict[str, Any]
) -> Hashable | None:
    """A cache key for these options, or None if one of them cannot be compared by value."""
    items = []
    for name, value in sorted(options.items()):
        if isinstance(value, Retry):
            value = ("Retry", value.max, tuple(value.intervals), value.enqueue_at_front)
        try:
            hash(value)
        except TypeError:
            return None
        items.append((name, value))
    try:
        hash(func)
    except TypeError:
        return None
    return (queue_name, func, tuple(items))
