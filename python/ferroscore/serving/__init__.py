"""The serving path: `Service` (what one serving process holds), the request's stages
(`scoring`), the routes, the OpenAPI document and `/docs`, idempotent replay, multipart forms,
the event loops' connection pools and the adapter onto Robyn's HTTP core (`adapters.robyn`).
It may import every package below it (`hooks`, `access`, `decisionlog`, `models`,
`processes`, `observability`) and the foundations (`pipeline`, `config`, `_core`); only the
CLI and the public top-level modules import it."""
