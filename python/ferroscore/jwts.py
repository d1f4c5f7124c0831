"""JWT bearer tokens from an identity provider, verified with PyJWT against a configured key
(`FERROSCORE_JWT_KEY_FILE`: a PEM public key, or an HMAC secret) or a JWKS file
(`FERROSCORE_JWT_JWKS_FILE`, the key picked by the token's `kid`). Claims map to the caller:
the tenant from `FERROSCORE_JWT_TENANT_CLAIM` (`tenant`), the scopes from `scope` (OAuth 2's
space-separated string) or `scp` / `scopes` (a list), the key id from `sub`. `exp` is
required; `aud` and `iss` are checked when configured. A verified token is remembered until
it expires, so a client reusing it pays one dict lookup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt

from ferroscore.config import Settings
from ferroscore.keys import SCOPES
from ferroscore.pipeline import Caller

_ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
_HMAC = ["HS256", "HS384", "HS512"]
#: Verified tokens remembered at most.
_REMEMBERED = 10_000


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
            options={"require": ["exp"], "verify_aud": self._audience is not None},
        )  # fmt: skip
        tenant = claims.get(self._tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise jwt.InvalidTokenError(f"no {self._tenant_claim!r} claim")
        caller = Caller(f"jwt:{claims.get('sub', '?')}", tenant, _scopes(claims))
        if len(self.known) >= _REMEMBERED:
            self.known = {}
        self.known[token] = (caller, float(claims["exp"]))
        return caller


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    raw = claims.get("scope", claims.get("scp", claims.get("scopes", [])))
    names = raw.split() if isinstance(raw, str) else [str(s) for s in raw]
    granted = {s for s in names if s in SCOPES}
    if "admin" in granted:
        granted.add("read")
    return frozenset(granted)
