"""Models and their lifecycle: the registry in PostgreSQL (`registry`), each process's catalog
of served endpoints, kept current by LISTEN (`catalog`), input-schema inference from training
data (`inference`), scikit-learn's linear models (`linear`), loading untrusted artifacts in a
sandboxed child (`sandbox`) and the pickling of `Model` (`pickling`). It may import
`processes` (LISTEN) and the foundations (`config`, `_core`), never access, the log or serving."""
