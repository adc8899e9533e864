"""The Content-Security-Policy of the preview pages.

NetBox 4.7 sends no CSP of its own (Django's ContentSecurityPolicyMiddleware is not in its
MIDDLEWARE; only uploaded media get a sandbox policy), so the policy set here only tightens.
The planner's WebAssembly needs 'wasm-unsafe-eval': it is granted on these pages alone.
NetBox's base template carries inline scripts (the colour mode, the CSRF token) and inline
onerror handlers (its media-failure redirects); they are allowed by their SHA-256, taken from
the page as rendered, so nothing the browser adds later (the preview renders Proxmox and
NetBox strings as text, never as markup) could run a script.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re

_INLINE_SCRIPT = re.compile(
    rb"<script(?P<attrs>(?:\s[^>]*)?)>(?P<body>.*?)</script\s*>", re.IGNORECASE | re.DOTALL
)
_HAS_SRC = re.compile(rb"\ssrc\s*=", re.IGNORECASE)
# Data blocks are not scripts: CSP does not govern them and they need no hash.
_DATA_BLOCK = re.compile(rb"""\stype\s*=\s*["']?application/(?:ld\+)?json""", re.IGNORECASE)
_TAG = re.compile(rb"<[a-zA-Z][^>]*>")
_HANDLER = re.compile(rb"""\son[a-z]+\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)

BASE_POLICY: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "'wasm-unsafe-eval'"],
    # NetBox's markup (and Bootstrap's JavaScript) use style attributes.
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'self'"],
}


def _source(data: bytes) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode("ascii") + "'"


def inline_script_hashes(page: bytes) -> list[str]:
    """Sources for every inline, executable <script> of a rendered page."""
    hashes = set()
    for match in _INLINE_SCRIPT.finditer(page):
        attrs = match.group("attrs")
        if not (_HAS_SRC.search(attrs) or _DATA_BLOCK.search(attrs)):
            hashes.add(_source(match.group("body")))
    return sorted(hashes)


def inline_handler_hashes(page: bytes) -> list[str]:
    """Sources for every on…="…" attribute of the page's tags, as the browser reads them."""
    hashes = set()
    # Script bodies are code, not markup: only their opening tags are looked at.
    tags_only = _INLINE_SCRIPT.sub(lambda m: b"<script" + m.group("attrs") + b">", page)
    for tag in _TAG.finditer(tags_only):
        for match in _HANDLER.finditer(tag.group(0)):
            value = match.group(1) if match.group(1) is not None else match.group(2)
            hashes.add(_source(html.unescape(value.decode("utf-8")).encode("utf-8")))
    return sorted(hashes)


def preview_policy(page: bytes) -> str:
    policy = {name: list(sources) for name, sources in BASE_POLICY.items()}
    policy["script-src"] += inline_script_hashes(page)
    handlers = inline_handler_hashes(page)
    if handlers:
        policy["script-src"] += ["'unsafe-hashes'", *handlers]
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in policy.items())


def with_preview_csp(response):
    """Sets the preview's policy on a rendered HTML response (and returns it)."""
    response["Content-Security-Policy"] = preview_policy(response.content)
    return response
