"""Files a teammate hands in: checked against the size and type limits (settings), stored
under the instance folder (outside the web root) under names we make, and served back only
to the owner, as attachments that browsers never sniff or render."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import current_app
from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

UPLOADS = "uploads"
MAX_FILES = 5
_ID = re.compile(r"^[A-Za-z0-9_-]{8,80}$")


class UploadRefused(ValueError):
    """A file over the limits: said on the page, nothing stored."""


def _root() -> Path:
    return Path(current_app.config["SETTINGS"].instance_path) / UPLOADS


def path_of(assignment_id: int, file_id: str) -> Path:
    if not _ID.match(file_id):
        raise UploadRefused("bad file id")
    return _root() / str(int(assignment_id)) / file_id


def check(uploads: list[FileStorage]) -> list[tuple[FileStorage, str, str, int]]:
    """Each file with its display name, type and size; UploadRefused for any over the
    limits (all or nothing, before anything is written)."""
    settings = current_app.config["SETTINGS"]
    uploads = [u for u in uploads if u and u.filename]
    if len(uploads) > MAX_FILES:
        raise UploadRefused(f"at most {MAX_FILES} files at a time")
    checked = []
    for upload in uploads:
        name = secure_filename(upload.filename or "") or "file"
        ext = name.rpartition(".")[2].lower() if "." in name else ""
        if ext not in settings.upload_types:
            raise UploadRefused(
                f"“{name}”: files of this type are not accepted "
                f"(accepted: {', '.join(settings.upload_types)})"
            )
        upload.stream.seek(0, 2)
        size = upload.stream.tell()
        upload.stream.seek(0)
        if size > settings.upload_max_bytes:
            raise UploadRefused(
                f"“{name}” is {_mib(size)}: the limit is {_mib(settings.upload_max_bytes)} a file"
            )
        checked.append((upload, name, ext, size))
    return checked


def save(assignment_id: int, nonce: str, checked) -> list[dict[str, Any]]:
    """Write the checked files under ids made from the form's nonce (a double submit writes
    the same files again, never new ones); returns what the delivery records about them."""
    out = []
    for index, (upload, name, ext, size) in enumerate(checked):
        file_id = f"{nonce}-{index}"
        path = path_of(assignment_id, file_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        upload.save(str(path))
        out.append({"id": file_id, "name": name, "type": ext, "size": size})
    return out


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
