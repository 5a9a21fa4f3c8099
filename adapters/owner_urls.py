"""The base of adapters that call URLs an owner gave (a Slack webhook URL, a teammate's own
endpoint): every call goes through dispatcher.security.outbound's safe session, and a URL it
refuses is a permanent AdapterError (retrying cannot make a loopback address public)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from adapters.base import Adapter
from dispatcher.errors import AdapterError
from dispatcher.security.outbound import UnsafeURL, safe_session, split_url


class OwnerURLAdapter(Adapter):
    """An adapter whose every outbound URL is owner-given: checked when saved and when sent."""

    def __init__(
        self,
        settings: Any,
        session: requests.Session | None = None,
        *,
        credentials: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
    ):
        super().__init__(
            settings, session or safe_session(settings), credentials=credentials, options=options
        )

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """`Adapter.request`, refusing an unsafe URL (a permanent failure); a name that does
        not resolve now is a connection error, retried like any other."""
        try:
            split_url(url)  # the scheme and host; the address is checked as it connects
            return super().request(method, url, **kwargs)
        except UnsafeURL as exc:
            raise AdapterError(self.name, f"refused to call the URL: {exc}") from exc
