"""Who may call what: API keys and their tenants (`keys`), JWT bearer tokens (`jwts`), the
guard that checks either on every request (`auth`), per-key rate limits (`ratelimit`) and
`make serve`'s development key (`devkey`). It may import `models` (the registry's tenants),
`processes` (LISTEN for revocations) and the foundations (`pipeline`, `config`, `_core`),
never the serving path above it."""
