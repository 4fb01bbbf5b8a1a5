"""A small synchronous client of the REST API; every failure becomes one `ApiError`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from ringfence.cli.settings import ClientSettings

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class ApiError(Exception):
    """The server answered with an error (`status` >= 400), or did not answer (`status` 0).

    `problem` is the RFC 9457 problem document: `detail`, optional `errors[]` of
    {pointer, message, validator, line?, column?} and `current_version` on 409/428.
    """

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or self.problem.get("title") or f"HTTP {self.status}")

    @property
    def errors(self) -> list[dict[str, Any]]:
        errors = self.problem.get("errors")
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []

    @property
    def current_version(self) -> int | None:
        version = self.problem.get("current_version")
        return version if isinstance(version, int) else None


def path(*parts: str) -> str:
    """Join path segments, quoting config names and patterns (they contain '/' and '*')."""
    return "/".join(quote(part, safe="/*") for part in parts)


def versioned(collection: str, name: str, version: int | None) -> str:
    """The URL of the current version of `name` in `collection`, or of one older version."""
    return path(collection, name) if version is None else path(collection, name, "-/revisions", str(version))


class ApiClient:
    def __init__(self, settings: ClientSettings, transport: httpx.BaseTransport | None = None) -> None:
        self.url = settings.url
        self._secret = settings.token
        headers = {"Accept": "application/json, application/problem+json"}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        self._http = httpx.Client(base_url=settings.url, headers=headers, timeout=TIMEOUT,
                                  transport=transport)

    def __repr__(self) -> str:
        return f"ApiClient(url={self.url!r})"

    def close(self) -> None:
        self._http.close()

    def request(
        self, method: str, url: str, *, params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None, if_match: int | None = None, text: bool = False,
    ) -> Any:
        """The decoded JSON answer of a 2xx response (its text with `text`); raises ApiError otherwise."""
        headers = {"If-Match": str(if_match)} if if_match is not None else None
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, url, params=query, json=body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            reason = self._redact(str(exc) or type(exc).__name__)
            raise ApiError(0, {"detail": f"cannot reach the ringfence server at {self.url}: {reason}; "
                                         "is `ringfence serve` running?"}) from None
        if text and response.is_success:
            return response.text
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.is_success:
            if data is None:
                raise ApiError(response.status_code, {
                    "detail": f"the server at {self.url} answered {response.status_code} without JSON; "
                              "is RINGFENCE_URL pointing at a ringfence server?"})
            return data
        if not isinstance(data, dict) or "detail" not in data:
            data = {"detail": f"the server at {self.url} answered {response.status_code} "
                              f"{response.reason_phrase}"}
        data["detail"] = self._redact(str(data["detail"]))
        raise ApiError(response.status_code, data)

    def _redact(self, text: str) -> str:
        # The server never echoes the token, but a proxy or a transport error might.
        return text.replace(self._secret, "<token>") if self._secret else text

    def get(self, url: str, **params: Any) -> Any:
        return self.request("GET", url, params=params)

    # --- what several commands need -----------------------------------------------------
    def head_version(self, name: str) -> int | None:
        """The version a write to `name` must name in If-Match; None when it never existed.

        A deleted config answers 404 to a plain GET, but its tombstone is still the
        current version, so the history tells the two cases apart.
        """
        try:
            return int(self.get(path("/v1/configs", name))["version"])
        except ApiError as exc:
            if exc.status != 404:
                raise
        try:
            items = self.get(path("/v1/configs", name, "-/revisions"), limit=1)["items"]
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return int(items[0]["version"]) if items else None

    def binding_version(self, collection: str, pattern: str) -> int | None:
        """The current version of the binding of `pattern` in `collection` (`schemas`, `policies`);
        a tombstone counts; None if never bound."""
        try:
            return int(self.get(path(f"/v1/{collection}", pattern))["version"])
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
