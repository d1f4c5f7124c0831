"""The decision log: the flusher that moves each process's spool (Rust) into PostgreSQL
(`flusher`), the table's daily partitions and their retention (`partitions`), and the
monitoring figures computed over it in SQL (`monitoring`). It may import only the
foundations (`config`, `_core`): the serving path and the CLI drive it, it drives nothing."""
