"""Bearer API keys from settings, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request

from service.errors import AuthenticationFailed, PermissionDenied


def key_matches(given: str, keys: list[str]) -> bool:
    """True when `given` equals one of `keys`; every key is compared, in constant time."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


def bearer_token(request: Request) -> str:
    """The token of an `Authorization: Bearer ...` header, or an empty string."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def require_api_key(request: Request) -> None:
    """When keys are configured, a /v1 route needs an API key (admin keys count too)."""
    settings = request.app.state.settings
    keys = [*settings.api_keys, *settings.admin_keys]
    if keys and not key_matches(bearer_token(request), keys):
        raise AuthenticationFailed("a valid API key is required (Authorization: Bearer ...)")


async def require_admin_key(request: Request) -> None:
    """When keys are configured, a write needs an admin key: a read key gets 403."""
    settings = request.app.state.settings
    if not settings.api_keys and not settings.admin_keys:
        return
    token = bearer_token(request)
    if key_matches(token, settings.admin_keys):
        return
    if key_matches(token, settings.api_keys):
        raise PermissionDenied("this key may read but not write: an admin key is required")
    raise AuthenticationFailed("a valid admin key is required (Authorization: Bearer ...)")
