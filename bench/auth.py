"""What authentication costs a request, in one process: the route's handler alone, then
behind the `Guard` with authentication off, with a key the process knows (the cache hit
every request after a key's first pays), by `Authorization: Bearer` and by `X-API-Key`, and
with a rate-limited key (the shared GCRA table). The handler returns a constant reply, so
the differences are the guard's. Medians of repeated runs; writes bench/results/auth.md.
Run: make bench-auth (the HTTP figure, ferroscore against ferroscore-nokeys, is in make
bench)."""

from __future__ import annotations

import time

from timing import machine, per_call_us, quick_run, write_report

from ferroscore.access.auth import Guard
from ferroscore.access.jwts import Verifier
from ferroscore.access.keys import KeyRing
from ferroscore.access.ratelimit import RateLimits
from ferroscore.config import Settings
from ferroscore.pipeline import Call, Caller, Reply, Route

TOKEN = "fsk_0123456789ab_" + "k" * 40
LIMITED = "fsk_ba9876543210_" + "r" * 40


def main() -> None:
    quick = quick_run(__doc__)
    calls, repeats = (2_000, 3) if quick else (200_000, 9)
    reply = Reply(200, b"{}")
    route = Route("POST", "/v1/models/{name}/score", lambda call: reply, "score", scope="score")
    settings = Settings.from_env({})
    ring = KeyRing(None, "host=/nonexistent", 5)  # type: ignore[arg-type]
    never = time.time() + 86_400 * 365
    scopes = frozenset({"score", "read"})
    ring.known[TOKEN] = (Caller("0123456789ab", "default", scopes), never)
    # A rate no request here reaches: the cost of the check, not of refusals.
    ring.known[LIMITED] = (Caller("ba9876543210", "default", scopes, 1e9, 10**8), never)
    on = Guard(True, ring, Verifier(settings), RateLimits())
    off = Guard(False, ring, Verifier(settings), RateLimits())

    def call(headers: dict[str, str]) -> Call:
        return Call("POST", route.path, {"name": "demo"}, {}, headers, b"{}")

    cases = [
        ("the handler alone", route.handler, {}),
        ("authentication off (FERROSCORE_AUTH=false)", off(route, route.handler), {}),
        ("a known key, Authorization: Bearer", on(route, route.handler),
         {"authorization": f"Bearer {TOKEN}"}),
        ("a known key, X-API-Key", on(route, route.handler), {"x-api-key": TOKEN}),
        ("a known key with a rate limit", on(route, route.handler),
         {"authorization": f"Bearer {LIMITED}"}),
    ]  # fmt: skip
    base = None
    lines = [
        "# What authentication costs a request",
        "",
        f"Machine: {machine()}. A route whose handler returns a constant reply, called in",
        f"process (no HTTP) with the headers as a dict; medians of {repeats} runs of {calls}",
        "calls. Command: `make bench-auth`.",
        "",
        "| case | µs per call | added to the handler alone |",
        "|---|---:|---:|",
    ]
    for label, handler, headers in cases:
        c = call(headers)
        assert handler(c).status == 200, label
        us = per_call_us(lambda h=handler, c=c: h(c), calls, repeats)
        base = us if base is None else base
        lines.append(f"| {label} | {us:.3f} | {us - base:+.3f} |")
    print(write_report("auth.md", lines))


if __name__ == "__main__":
    main()
