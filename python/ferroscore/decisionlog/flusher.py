"""The decision log: the one component that owns "record this decision".

A request's decision is appended to this process's spool (Rust: segment files with a
checksum per record, `fdatasync` by group commit in the `durable` mode) before its answer is
released, as binary COPY tuples (the features a `float8[]`, their names the version's, in
`version_features`). Flusher threads (`FERROSCORE_DECISION_FLUSHERS`) seal the active
segment every `FERROSCORE_DECISION_FLUSH_MS` and move sealed segments into PostgreSQL, each
in one transaction on a connection of its own (binary COPY into the table; if some of its
rows are there already, COPY into a staging table, then `INSERT … ON CONFLICT DO NOTHING` on
the decision's unique key), and remove each only after its commit. A process that starts
replays what an earlier one left, including segments of text rows with jsonb features that
a version before binary rows spooled (converted by the names in `version_features`):
nothing acknowledged is lost, and nothing is written twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from ferroscore._core import (
    COPY_HEADER,
    COPY_TRAILER,
    DECISION_COLUMNS,
    Decision,
    Spool,
    SpoolFullError,
    SpoolLockedError,
)
from ferroscore.decisionlog import partitions

log = logging.getLogger(__name__)

MODES = ("durable", "buffered", "off")
#: A segment is sealed at this size even between two flushes.
SEGMENT_BYTES = 4 << 20
_COLUMNS = " ".join(DECISION_COLUMNS.split())
_DIRECT = f"COPY decisions ({_COLUMNS}) FROM STDIN (FORMAT binary)"
_STAGE = "CREATE TEMP TABLE decisions_in (LIKE decisions INCLUDING DEFAULTS) ON COMMIT DROP"
_MOVE = (
    f"INSERT INTO decisions ({_COLUMNS}) SELECT {_COLUMNS} FROM decisions_in ON CONFLICT DO NOTHING"
)
#: Text rows with jsonb features, as versions before binary rows spooled them (with the
#: warnings field since migration 0010, without it before), replayed through a table of their
#: own and converted by their version's names.
_TEXT_COLUMNS = (
    "request_id, row_index, model, version, features, score, created_at, decision, role,"
    " tenant, reference"
)
_TEXT_STAGE = (
    "CREATE TEMP TABLE decisions_text_in (request_id text, row_index integer, model text,"
    " version integer, features jsonb, score double precision[], created_at timestamptz,"
    " decision text, role text, tenant text, reference text, warnings jsonb) ON COMMIT DROP"
)
_TEXT_MOVE = f"""
INSERT INTO decisions ({_COLUMNS})
SELECT t.request_id, t.row_index, t.model, t.version,
       CASE WHEN v.features IS NOT NULL THEN ARRAY(
           SELECT (t.features ->> n)::float8 FROM unnest(v.features) WITH ORDINALITY AS u(n, i)
           ORDER BY i) END,
       (SELECT jsonb_object_agg(c, t.features -> c) FROM unnest(v.context) c
        WHERE t.features ? c),
       t.score, t.created_at, t.decision, t.role, t.tenant, t.reference, t.warnings
FROM decisions_text_in t
LEFT JOIN version_features v ON (v.tenant, v.name, v.version) = (t.tenant, t.model, t.version)
ON CONFLICT DO NOTHING
"""
_QUARANTINE = (
    "INSERT INTO decisions_quarantine (tenant, request_id, error, row_bytes)"
    " VALUES (%s, %s, %s, %s)"
)
#: Where a binary tuple's fields are (the order of `DECISION_COLUMNS`), and a text row's.
_REQUEST_ID, _TENANT, _TEXT_TENANT = 0, 10, 9
_MAX_BACKOFF_S = 5.0
#: Seconds between two rounds of partition upkeep (see `ferroscore.decisionlog.partitions`).
MAINTAIN_EVERY_S = 3600.0
#: The file naming the database a spool directory's decisions belong to.
_OWNER = "database"


def database_identity(conninfo: str) -> str:
    """Where decisions go, as a spool directory remembers it: host, port and database."""
    params = conninfo_to_dict(conninfo)
    host = params.get("host") or os.environ.get("PGHOST", "")
    port = params.get("port") or os.environ.get("PGPORT", "5432")
    return f"{host}:{port}/{params.get('dbname') or os.environ.get('PGDATABASE', '')}"


class DecisionLog:
    """Records decisions durably on local disk and moves them to PostgreSQL in segments.

    `mode`: "durable" (a decision is on disk, fsynced, before `record` returns), "buffered"
    (it is in the kernel's page cache: it survives the process, and a crash of the machine
    loses at most the last `flush_interval_s`) or "off" (nothing is recorded).
    """

    def __init__(
        self,
        pool: ConnectionPool,
        *,
        database: str,
        mode: str,
        directory: Path,
        max_bytes: int,
        flush_interval_s: float,
        flushers: int = 1,
        retention_days: int = 0,
        commit_window_us: int = 0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"decision log mode {mode!r}: use one of {', '.join(MODES)}")
        self._pool = pool
        self._database = database
        self.mode = mode
        self.directory = directory
        self.max_bytes = max_bytes
        self.flush_interval_s = flush_interval_s
        self.retention_days = retention_days
        self.commit_window_us = commit_window_us
        #: Requests awaiting their group commit on the event loop, in ticket order.
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._maintained_at = -MAINTAIN_EVERY_S
        #: Rows PostgreSQL refused, moved to `decisions_quarantine` by this process.
        self.quarantined = 0
        self.spool: Spool | None = None
        self._identity = ""
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._flushed = threading.Condition()
        #: Segments a flusher is moving: each goes over one connection, once.
        self._claimed: set[int] = set()
        self._claims = threading.Lock()
        self.flusher_threads = [
            threading.Thread(target=self._run, args=(i,), name=f"decision-log-{i}", daemon=True)
            for i in range(flushers)
        ]

    def start(self) -> None:
        """Opens this process's spool (one another process left, if any: it is replayed
        first), flushes the spools of processes that are gone, and starts the flusher."""
        if self.mode == "off":
            return
        identity = database_identity(self._database)
        self.spool = self._open_spool(identity)
        log.info("decision log: %s, spool %s", self.mode, self.spool.directory)
        self._identity = identity
        for thread in self.flusher_threads:
            thread.start()

    def record(self, decision: Decision, role: str, tenant: str) -> None:
        """Records one decision of `tenant`'s model before the caller answers, waiting for the
        disk on this thread. `role` is "champion" for the version that answered, "shadow"
        for a challenger scored beside it. Raises SpoolFullError (the spool holds
        `max_bytes`, or its disk is full) or OSError: the decision is not recorded and must
        not be acknowledged."""
        if self.spool is not None:
            self.spool.append(decision, role, tenant)

    def record_nowait(self, decision: Decision, role: str, tenant: str) -> int:
        """Records one decision as `record` does, without waiting for the disk: returns the
        ticket to `await committed(ticket)` before the caller is answered (0: nothing to
        wait for). Raises SpoolFullError at once when the spool is full."""
        if self.spool is None:
            return 0
        return self.spool.append_nowait(decision, role, tenant)

    async def committed(self, ticket: int) -> None:
        """Returns once the decision of `ticket` is on disk, waiting on the running event
        loop without a thread: the syncer wakes the loop once per group (an eventfd the loop
        reads), which resolves every waiter the group covers. Raises the group's
        SpoolFullError or OSError if its write or sync failed. Called on one loop only."""
        spool = self.spool
        if spool is None or spool.decided(ticket):
            return
        if self._loop is None:
            self._watch(spool)
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((ticket, future))
        await future

    def _watch(self, spool: Spool) -> None:
        """Reads the syncer's eventfd on the running loop (the first waiter's)."""
        loop = asyncio.get_running_loop()
        fd = spool.wake_fd
        assert fd is not None, "a durable spool has an eventfd"
        loop.add_reader(fd, self._woken, fd)
        self._loop = loop

    def _woken(self, fd: int) -> None:
        """On the loop: the syncer decided a group. Resolves every waiter it covers."""
        with contextlib.suppress(BlockingIOError):  # another wake read it already
            os.read(fd, 8)
        spool, waiting = self.spool, self._waiting
        assert spool is not None
        while waiting:
            ticket, future = waiting[0]
            try:
                if not spool.decided(ticket):
                    return
                error: Exception | None = None
            except (SpoolFullError, OSError) as e:
                error = e
            waiting.popleft()
            if future.done():  # its request was cancelled
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    def backlog_bytes(self) -> int:
        """Bytes recorded and not yet in PostgreSQL."""
        return self.spool.bytes if self.spool is not None else 0

    def lag_s(self) -> float:
        """How far behind the flusher is: the age of the oldest segment waiting."""
        if self.spool is None or not (sealed := self.spool.sealed()):
            return 0.0
        try:
            oldest = _segment_path(self.spool, sealed[0]).stat().st_mtime
        except FileNotFoundError:  # flushed meanwhile
            return 0.0
        return max(0.0, time.time() - float(oldest))

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until every decision recorded before this call is in PostgreSQL."""
        if self.spool is None:
            return True
        self.spool.seal()
        last = max(self.spool.sealed(), default=0)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._flushed:
            while (pending := self.spool.sealed()) and pending[0] <= last:
                self._wake.set()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._flushed.wait(0.05 if left is None else min(left, 0.05))
        return True

    def close(self, timeout: float | None = None) -> None:
        """Moves what is recorded into PostgreSQL (trying for `timeout`; whatever is left
        stays in the spool for the next start) and stops the flusher."""
        if any(thread.is_alive() for thread in self.flusher_threads):
            self.flush(timeout)
            self._closing.set()
            self._wake.set()
            for thread in self.flusher_threads:
                thread.join(timeout)

    def _open_spool(self, identity: str) -> Spool:
        """The first directory under `directory` of this database that no live process
        holds, else a new one."""
        # Decisions hold features and tenant names: for this user only.
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        while True:
            taken = sorted(int(p.name) for p in self.directory.iterdir() if p.name.isdigit())
            for n in [*taken, (taken[-1] + 1 if taken else 0)]:
                path = self.directory / str(n)
                owner = path / _OWNER
                if owner.exists() and owner.read_text() != identity:
                    continue
                try:
                    spool = Spool(path, durable=self.mode == "durable", max_bytes=self.max_bytes,
                                  segment_bytes=SEGMENT_BYTES,
                                  commit_window_us=self.commit_window_us)  # fmt: skip
                except SpoolLockedError:  # a live process's, or one made meanwhile
                    continue
                fd = os.open(owner, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(identity)
                return spool

    def _adopt_orphans(self) -> None:
        """Flushes and removes the spools of this database that no process holds (left by a
        server that ran more processes than this one)."""
        assert self.spool is not None
        identity = self._identity
        for path in sorted(p for p in self.directory.iterdir() if p.name.isdigit()):
            owner = path / _OWNER
            if path == self.spool.directory or not owner.exists():
                continue
            if owner.read_text() != identity:
                continue
            try:
                orphan = Spool(path, durable=False, max_bytes=self.max_bytes,
                               segment_bytes=SEGMENT_BYTES)  # fmt: skip
            except SpoolLockedError:
                continue
            sealed = orphan.sealed()
            if sealed:
                log.info("decision log: replaying %d segments left in %s", len(sealed), path)
            if all(self._flush_segment(orphan, s) for s in sealed):
                shutil.rmtree(path)
            del orphan

    def _run(self, flusher: int) -> None:
        """A flusher: moves each sealed segment no other flusher has claimed, oldest first.
        The first also replays the spools of processes that are gone and keeps the
        partitions."""
        spool = self.spool
        assert spool is not None
        if flusher == 0:
            replaying = spool.sealed()
            if replaying:
                log.info("decision log: replaying %d segments left by an earlier process",
                         len(replaying))  # fmt: skip
            self._adopt_orphans()
        while not self._closing.is_set():
            try:
                if flusher == 0:
                    self._maintain()
                spool.seal()
                for segment in spool.sealed():
                    with self._claims:
                        if segment in self._claimed:
                            continue
                        self._claimed.add(segment)
                    # Listed before another flusher moved and removed it: nothing left to do.
                    # (Claimed now, it cannot be removed under us.)
                    if not _segment_path(spool, segment).exists():
                        with self._claims:
                            self._claimed.discard(segment)
                        continue
                    try:
                        moved = self._flush_segment(spool, segment)
                    finally:
                        with self._claims:
                            self._claimed.discard(segment)
                    if not moved:
                        break
            except Exception:
                log.exception("decision log: flush failed; retrying")
            with self._flushed:
                self._flushed.notify_all()
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()

    def _maintain(self) -> None:
        """The decision table's partitions, hourly: made ahead, dropped past retention."""
        if time.monotonic() - self._maintained_at < MAINTAIN_EVERY_S:
            return
        try:
            with self._pool.connection(timeout=5) as conn:
                partitions.maintain(conn, self.retention_days)
            self._maintained_at = time.monotonic()
        except Exception as e:  # the database away, or stalled: the flush must go on
            log.warning("decision log: partition upkeep failed (%s); trying again in a minute", e)
            self._maintained_at = time.monotonic() - MAINTAIN_EVERY_S + 60

    def _flush_segment(self, spool: Spool, segment: int) -> bool:
        """Moves one segment into PostgreSQL, retrying while the database is away; False when
        closing stopped it (the segment stays for the next start)."""
        rows, records, torn = spool.read(segment)
        if torn:
            log.warning("decision log: segment %d ends with %d bytes of an append cut short by a"
                        " crash (never acknowledged)", segment, torn)  # fmt: skip
        backoff = 0.05
        while True:
            try:
                if rows:
                    self._copy(rows)
                spool.remove(segment)
                return True
            except psycopg.OperationalError as e:
                log.warning("decision log: database unavailable (%s); retrying in %.2fs",
                            e, backoff)  # fmt: skip
            except (psycopg.DataError, psycopg.IntegrityError) as e:
                log.warning("decision log: segment %d (%d decisions) has rows PostgreSQL "
                            "refuses (%s); moving it row by row", segment, records, e)  # fmt: skip
                try:
                    self._salvage(rows)
                    spool.remove(segment)
                    return True
                except psycopg.Error:
                    log.exception("decision log: segment %d not moved; retrying", segment)
            except psycopg.Error:
                # Not a row's fault (a missing table, a permission): nothing is set aside.
                log.exception("decision log: segment %d not moved; retrying", segment)
            if self._closing.wait(backoff):
                return False
            backoff = min(backoff * 2, _MAX_BACKOFF_S)

    def _copy(self, rows: bytes) -> None:
        """One segment's rows in one transaction. Straight into the table, the cheap way for
        PostgreSQL; when some are there already (a segment replayed after a crash between
        its commit and its removal), or the rows are an older version's text, through a
        staging table that drops those."""
        formats = _formats(rows)
        with self._pool.connection() as conn:
            if formats == [(BINARY, rows)]:
                try:
                    with conn.transaction(), conn.cursor() as cur, cur.copy(_DIRECT) as copy:
                        copy.write(BINARY.frame(rows))
                    return
                except psycopg.errors.UniqueViolation:
                    log.info("decision log: a replayed segment; skipping the rows already written")
            with conn.transaction(), conn.cursor() as cur:
                for fmt, part in formats:
                    fmt.move(cur, fmt.frame(part))

    def _salvage(self, rows: bytes) -> None:
        """Moves a segment whose rows PostgreSQL partly refuses, in one transaction: halves in
        savepoints, through the staging tables (rows already there are skipped), down to the
        single rows it refuses, which go to `decisions_quarantine`."""
        refused: list[tuple[_Format, bytes, str]] = []
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            todo = [(fmt, fmt.split(part)) for fmt, part in _formats(rows)]
            while todo:
                fmt, chunk = todo.pop()
                try:
                    with conn.transaction():
                        fmt.move(cur, fmt.frame(fmt.join(chunk)))
                except (psycopg.DataError, psycopg.IntegrityError) as e:
                    if len(chunk) == 1:
                        refused.append((fmt, chunk[0], str(e).strip()))
                    else:
                        half = len(chunk) // 2
                        todo += [(fmt, chunk[half:]), (fmt, chunk[:half])]
            for fmt, row, error in refused:
                tenant, request_id = fmt.who(row)
                cur.execute(_QUARANTINE, (tenant, request_id, error, row))
        self.quarantined += len(refused)
        for fmt, row, error in refused:
            tenant, request_id = fmt.who(row)
            log.error("decision log: a decision row of tenant %r (request %s) is quarantined in "
                      "decisions_quarantine: PostgreSQL refused it (%s)",
                      tenant, request_id, error)  # fmt: skip


@dataclass(frozen=True)
class _Format:
    """A way decision rows were spooled: how to split them into rows and join rows again,
    frame them as one COPY stream, and move a stream into `decisions` through a staging
    table."""

    table: str
    stage: str
    copy: str
    insert: str
    split: Callable[[bytes], list[bytes]]
    join: Callable[[list[bytes]], bytes]
    frame: Callable[[bytes], bytes]
    #: A row's (tenant, request_id), for an operator to find a refused one by.
    who: Callable[[bytes], tuple[str | None, str | None]]

    def move(self, cur: psycopg.Cursor[Any], stream: bytes) -> None:
        # Again in a savepoint that rolled its first one back (salvage).
        cur.execute(f"DROP TABLE IF EXISTS {self.table}")
        cur.execute(self.stage)
        with cur.copy(self.copy) as copy:
            copy.write(stream)
        cur.execute(self.insert)


def _segment_path(spool: Spool, segment: int) -> Path:
    """Where the spool keeps a segment (its own naming: the id, zero-padded)."""
    return spool.directory / f"{segment:020}.seg"


def _tuples(rows: bytes) -> list[bytes]:
    """Binary COPY tuples, each whole: its field count, then each field's length and bytes."""
    found, at = [], 0
    while at < len(rows):
        start = at
        (n,) = struct.unpack_from(">h", rows, at)
        at += 2
        for _ in range(n):
            (length,) = struct.unpack_from(">i", rows, at)
            at += 4 + max(length, 0)
        found.append(rows[start:at])
    return found


def _binary_fields(row: bytes) -> list[bytes | None]:
    fields: list[bytes | None] = []
    at = 2
    while at < len(row):
        (length,) = struct.unpack_from(">i", row, at)
        at += 4
        fields.append(None if length < 0 else row[at : at + length])
        at += max(length, 0)
    return fields


def _text(field: bytes | None) -> str | None:
    """A row's field as text PostgreSQL can hold, for an operator to find the row by."""
    if field is None:
        return None
    return field.decode(errors="replace").replace("\x00", "\ufffd")


def _binary_who(row: bytes) -> tuple[str | None, str | None]:
    fields = _binary_fields(row)

    def at(i: int) -> bytes | None:
        return fields[i] if i < len(fields) else None

    return _text(at(_TENANT)), _text(at(_REQUEST_ID))


def _text_who(row: bytes) -> tuple[str | None, str | None]:
    fields = row.split(b"\t")

    def at(i: int) -> bytes | None:
        return fields[i] if i < len(fields) else None

    return _text(at(_TEXT_TENANT)), _text(at(_REQUEST_ID))


BINARY = _Format(
    "decisions_in", _STAGE, f"COPY decisions_in ({_COLUMNS}) FROM STDIN (FORMAT binary)",
    _MOVE, _tuples, b"".join, lambda rows: COPY_HEADER + rows + COPY_TRAILER, _binary_who,
)  # fmt: skip


def _text_format(columns: str) -> _Format:
    return _Format(
        "decisions_text_in", _TEXT_STAGE, f"COPY decisions_text_in ({columns}) FROM STDIN",
        _TEXT_MOVE, lambda rows: rows.split(b"\n")[:-1],
        lambda rows: b"".join(r + b"\n" for r in rows), lambda rows: rows, _text_who,
    )  # fmt: skip


#: Text rows with the warnings field (migrations 0010 to 0011), and before it.
TEXT = _text_format(_TEXT_COLUMNS + ", warnings")
TEXT_BEFORE_WARNINGS = _text_format(_TEXT_COLUMNS)
_TEXT_TABS = {_TEXT_COLUMNS.count(","): TEXT_BEFORE_WARNINGS, _TEXT_COLUMNS.count(",") + 1: TEXT}


def _formats(rows: bytes) -> list[tuple[_Format, bytes]]:
    """A segment's rows by the format they were spooled in. A binary tuple starts with its
    field count's high byte, 0; a text row never starts with NUL, which text cannot hold. One
    segment is written by one version, so one format; text rows are grouped by their fields."""
    if not rows or rows[0] == 0:
        return [(BINARY, rows)]
    groups: dict[int, list[bytes]] = {}
    for line in rows.split(b"\n")[:-1]:
        groups.setdefault(line.count(b"\t"), []).append(line + b"\n")
    # A row of another count of fields is refused by its COPY, and quarantined.
    return [(_TEXT_TABS.get(tabs, TEXT), b"".join(lines)) for tabs, lines in groups.items()]
