"""The review app's security rules, as plain functions the app's middleware and routes call.

- **Token.** Every request carries the session token: as ``?token=`` (the printed URL), as the cookie the
  server sets on the first such request, or as the ``X-Review-Token`` header. Anything else gets 401.
- **Writes** (any method but GET/HEAD) need the token in the ``X-Review-Token`` header (a cookie alone is not
  enough: a page of another origin cannot set that header without a CORS preflight, which the app never
  allows), an ``Origin``, when sent, equal to the app's own, and ``Sec-Fetch-Site``, when sent, ``same-origin``.
- **Files.** Only files inside the run folder, by a relative path without ``..``, absolute parts, backslashes or
  NUL, whose resolved path (symlinks followed) still lies inside the run folder.
- **Pages.** Responses carry a Content-Security-Policy that allows no inline script, so text that reaches a
  page as markup still cannot run; the page itself writes every report text and id with ``textContent``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

TOKEN_HEADER = "x-review-token"
SAFE_METHODS = frozenset({"GET", "HEAD"})
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def new_token() -> str:
    """A fresh random session token (URL-safe, 192 bits)."""
    return secrets.token_urlsafe(24)


def cookie_name(port: int) -> str:
    """The session cookie's name: cookies are shared by every port of a host, so the name carries the port."""
    return f"endoked_review_{int(port)}"


def token_ok(given: str | None, token: str) -> bool:
    """Constant-time comparison of a presented token with the session's."""
    return bool(given) and hmac.compare_digest(str(given).encode(), token.encode())


def request_allowed(
    method: str,
    query_token: str | None,
    header_token: str | None,
    cookie_token: str | None,
    headers: Mapping[str, str],
    token: str,
) -> tuple[int, str] | None:
    """None when a request may proceed, else ``(status, reason)`` (401 without a valid token, 403 for a write
    that may come from another origin)."""
    if method.upper() in SAFE_METHODS:
        if any(token_ok(t, token) for t in (query_token, header_token, cookie_token)):
            return None
        return 401, "missing or wrong token"
    if not token_ok(header_token, token):
        if any(token_ok(t, token) for t in (query_token, cookie_token)):
            return 403, "a write needs the token in the X-Review-Token header"
        return 401, "missing or wrong token"
    host = headers.get("host", "")
    origin = headers.get("origin")
    if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
        return 403, "cross-origin write refused"
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return 403, "cross-site write refused"
    return None


def run_file(root: Path, rel: str) -> Path | None:
    """The file ``rel`` of the run folder ``root``, or None when the path is unsafe or not a file inside it."""
    if not rel or "\\" in rel or "\0" in rel:
        return None
    parts = PurePosixPath(rel).parts
    if PurePosixPath(rel).is_absolute() or any(p in ("..", ".") for p in parts) or ":" in parts[0]:
        return None
    base = root.resolve()
    try:
        path = (base / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path
