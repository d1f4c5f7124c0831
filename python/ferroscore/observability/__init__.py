"""What an operator reads: Prometheus metrics and their middleware (`metrics`), JSON log
lines and the access log (`logs`). It may import only the foundations (`pipeline`, `config`,
`_core`)."""
