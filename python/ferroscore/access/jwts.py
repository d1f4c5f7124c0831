"""JWT bearer tokens from an identity provider, verified with PyJWT against a configured key
(`FERROSCORE_JWT_KEY_FILE`: a PEM public key, or an HMAC secret) or a JWKS file
(`FERROSCORE_JWT_JWKS_FILE`, the key picked by the token's `kid`). Claims map to the caller:
the tenant from `FERROSCORE_JWT_TENANT_CLAIM` (`tenant`), the scopes from `scope` (OAuth 2's
space-separated string) or `scp` / `scopes` (a list of strings), the key id from `sub`.
`exp` and `sub` are required, and a claim of the wrong type refuses the token; `aud` and
`iss` are checked when configured. A verified token is remembered until
it expires, so a client reusing it pays one dict lookup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt

from ferroscore.access.keys import SCOPES, TENANT
from ferroscore.config import Settings
from ferroscore.pipeline import Caller

_ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
_HMAC = ["HS256", "HS384", "HS512"]
#: Verified tokens remembered at most.
_REMEMBERED = 10_000
#: Longest `sub` claim: it is the caller's key id in logs and audit trails.
_MAX_SUBJECT = 255


class Verifier:
    """Turns a JWT into a `Caller`, or raises `jwt.InvalidTokenError`."""

    def __init__(self, settings: Settings) -> None:
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._tenant_claim = settings.jwt_tenant_claim
        self._key: Any = None
        self._jwks: jwt.PyJWKSet | None = None
        self._algorithms = _ASYMMETRIC
        if settings.jwt_jwks_file is not None:
            self._jwks = jwt.PyJWKSet.from_json(Path(settings.jwt_jwks_file).read_text())
        elif settings.jwt_key_file is not None:
            text = Path(settings.jwt_key_file).read_text()
            if text.lstrip().startswith("-----BEGIN"):
                self._key = text
            else:
                self._key, self._algorithms = text.strip(), _HMAC
        self.known: dict[str, tuple[Caller, float]] = {}

    @property
    def configured(self) -> bool:
        return self._key is not None or self._jwks is not None

    def verify(self, token: str) -> Caller:
        key = self._key
        algorithms = self._algorithms
        if self._jwks is not None:
            kid = jwt.get_unverified_header(token).get("kid")
            try:
                found = self._jwks[kid] if kid is not None else self._jwks.keys[0]
            except (KeyError, IndexError):
                raise jwt.InvalidKeyError(f"no key {kid!r} in the JWKS file") from None
            key = found
            algorithms = [found.algorithm_name] if found.algorithm_name else _ASYMMETRIC
        claims = jwt.decode(
            token, key, algorithms=algorithms, audience=self._audience, issuer=self._issuer,
            options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
        )  # fmt: skip
        tenant = claims.get(self._tenant_claim)
        if not isinstance(tenant, str) or not TENANT.fullmatch(tenant):
            raise jwt.InvalidTokenError(
                f"the {self._tenant_claim!r} claim must name a tenant (1 to 63 letters, digits, "
                "'.', '_' or '-')"
            )
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= _MAX_SUBJECT:
            raise jwt.InvalidTokenError(f"the 'sub' claim must be a string of 1 to {_MAX_SUBJECT}")
        if not subject.isprintable():
            raise jwt.InvalidTokenError("the 'sub' claim must be printable text")
        caller = Caller(f"jwt:{subject}", tenant, _scopes(claims))
        if len(self.known) >= _REMEMBERED:
            self.known = {}
        self.known[token] = (caller, float(claims["exp"]))
        return caller


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    """`scope` (a space-separated string, or a list as some providers send it), else `scp` or
    `scopes`; anything else is not a scope claim, and refuses the token."""
    name = next((n for n in ("scope", "scp", "scopes") if n in claims), None)
    raw = claims[name] if name is not None else []
    if isinstance(raw, str):
        names = raw.split()
    elif isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        names = raw
    else:
        raise jwt.InvalidTokenError(f"the {name!r} claim must be a string or a list of strings")
    granted = {s for s in names if s in SCOPES}
    if "admin" in granted:
        granted.add("read")
    return frozenset(granted)
