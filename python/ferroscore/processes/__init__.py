"""Processes and their signals: the supervisor of serving processes (`supervisor`), the
shared-memory board they report on (`board`), stop-signal handling (`lifecycle`), PostgreSQL
LISTEN on its own connection (`listen`), the embedded PostgreSQL of `make serve`
(`embedded`) and reading `/proc` for a drain's open connections (`procnet`). It may import
only the foundations (`config`, `_core`)."""
