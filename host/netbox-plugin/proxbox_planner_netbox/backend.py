"""Proxmox answers for the browser, through the Proxbox backend (`proxbox-planner serve`).

The backend is the one the Proxbox plugin talks to (its FastAPI endpoint, chosen and
authenticated by the plugin's own code, with the API key it stores). The browser sends only
Proxmox API paths; which paths may be read is decided by the backend (the planner's
`discover`), the Proxmox token never leaves it, and no secret is ever put in an answer.
"""

from __future__ import annotations

import json

import requests

PLANNER_PROXMOX_PATH = "planner/proxmox"
# One discover round of a large cluster is a few thousand paths; anything far above is a
# client bug, refused before it costs the backend anything.
MAX_PATHS = 20000
MAX_PATH_LENGTH = 512


class BackendError(Exception):
    """The backend could not give an answer; `status` is what the browser gets."""

    def __init__(self, message: str, status: int = 502):
        super().__init__(message)
        self.status = status


def validate_paths(paths: object) -> list[str]:
    if not isinstance(paths, list) or not paths:
        raise BackendError("paths: a non-empty list of Proxmox API paths is required", 400)
    if len(paths) > MAX_PATHS:
        raise BackendError(f"paths: at most {MAX_PATHS} per request", 400)
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/") or len(path) > MAX_PATH_LENGTH:
            raise BackendError("paths: every path is a string starting with '/'", 400)
    return paths


def _backend_context():
    # The Proxbox plugin's own choice of its backend and of the headers (API key) it sends.
    from netbox_proxbox.services.backend_context import get_fastapi_request_context

    context = get_fastapi_request_context()
    if context is None or not context.http_url:
        raise BackendError(
            "no Proxbox backend: add a FastAPI endpoint (Plugins → Proxbox → FastAPI endpoints) "
            "pointing at `proxbox-planner serve`",
            503,
        )
    return context


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("message") or body.get("error")
        if isinstance(detail, dict):
            detail = detail.get("message")
        if isinstance(detail, str) and detail:
            return f"HTTP {response.status_code}: {detail[:500]}"
    return f"HTTP {response.status_code}"


def _post_paths(context, endpoint_id: int, paths: list[str], timeout: float) -> requests.Response:
    url = f"{context.http_url.rstrip('/')}/{PLANNER_PROXMOX_PATH}"
    try:
        return requests.post(
            url,
            json={"endpoint_id": endpoint_id, "paths": paths},
            headers={**(context.headers or {}), "Accept": "application/json"},
            verify=bool(context.verify_ssl),
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        # The exception's class only: its text could carry the URL, never a header, but
        # the class says enough.
        raise BackendError(f"the Proxbox backend did not answer: {type(exc).__name__}") from exc


def _push_endpoint(context, endpoint) -> None:
    """Gives the backend the Proxmox endpoint (address, token) with the Proxbox plugin's own
    push, the one its sync jobs run first; needed once, before the endpoint's first sync."""
    from netbox_proxbox.views.backend_sync import sync_proxmox_endpoint_to_backend

    ok, detail, _status = sync_proxmox_endpoint_to_backend(
        endpoint,
        base_url=context.http_url.rstrip("/"),
        auth_headers=context.headers or {},
        backend_verify_ssl=bool(context.verify_ssl),
    )
    if not ok:
        raise BackendError(f"the Proxbox plugin could not give the backend this endpoint: {detail or 'refused'}")


def fetch_proxmox(endpoint, paths: list[str], *, timeout: float = 120) -> dict:
    """`{path: data | {"error": {...}}}` for the paths of one ProxmoxEndpoint, as the backend
    answers them (it reads Proxmox with the token the plugin pushed to it)."""
    context = _backend_context()
    response = _post_paths(context, endpoint.pk, paths, timeout)
    if response.status_code == 404:
        # The backend does not hold this endpoint yet (no sync job has pushed it).
        _push_endpoint(context, endpoint)
        response = _post_paths(context, endpoint.pk, paths, timeout)
    if response.status_code != 200:
        raise BackendError(f"the Proxbox backend refused the Proxmox paths: {_detail(response)}")
    try:
        answers = response.json()
    except (ValueError, json.JSONDecodeError) as exc:
        raise BackendError("the Proxbox backend answered something that is not JSON") from exc
    if not isinstance(answers, dict):
        raise BackendError("the Proxbox backend answered a JSON value that is not an object")
    return answers
