//! `Spool`: the decision spool of ferroscore-core, appended to on the request path with the
//! GIL released, and read whole segments at a time by the flusher.

use std::path::PathBuf;
use std::time::Duration;

use ferroscore_core as core;
use ferroscore_core::spool::{SpoolError, Sync};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::endpoint::Decision;
use crate::errors::{SpoolFullError, SpoolLockedError};
use crate::gil::release_gil_if;

fn spool_error(e: SpoolError) -> PyErr {
    match e {
        SpoolError::Full(_) => SpoolFullError::new_err(e.to_string()),
        SpoolError::Locked(_) => SpoolLockedError::new_err(e.to_string()),
        SpoolError::Io(io) => PyOSError::new_err(format!("decision spool: {io}")),
    }
}

#[pyclass(module = "ferroscore._core", frozen)]
pub struct Spool {
    inner: core::spool::Spool,
}

#[pymethods]
impl Spool {
    /// Opens the spool in `directory` (created if missing; one process at a time). `durable`:
    /// each append returns once `fdatasync` covers it; else once the kernel has it.
    /// `commit_window_us`: how long a durable group may gather before its sync, once appends
    /// are coming in.
    #[new]
    #[pyo3(signature = (directory, *, durable, max_bytes, segment_bytes, commit_window_us=0))]
    fn new(
        py: Python<'_>,
        directory: PathBuf,
        durable: bool,
        max_bytes: u64,
        segment_bytes: u64,
        commit_window_us: u64,
    ) -> PyResult<Self> {
        if segment_bytes == 0 || max_bytes == 0 {
            return Err(PyValueError::new_err(
                "max_bytes and segment_bytes must be positive",
            ));
        }
        let sync = if durable {
            Sync::Durable
        } else {
            Sync::Buffered
        };
        let inner = py
            .detach(|| core::spool::Spool::open(&directory, sync, max_bytes, segment_bytes))
            .map_err(spool_error)?;
        inner.set_commit_window(Duration::from_micros(commit_window_us));
        Ok(Spool { inner })
    }

    /// Records `decision`'s rows (as COPY text), owned by `tenant`, in the role `role`. Raises
    /// SpoolFullError when the spool is at its limit or its disk is full.
    fn append(
        &self,
        py: Python<'_>,
        decision: &Decision,
        role: &str,
        tenant: &str,
    ) -> PyResult<()> {
        let append = || {
            let mut rows = Vec::with_capacity(1024);
            decision.copy_rows_into(role, tenant, &mut rows);
            self.inner.append(&rows)
        };
        // Waiting for the disk lets the other threads run; a buffered append (a few µs, a
        // write into the page cache) keeps the GIL, which costs more to give up and take back.
        let durable = self.inner.sync() == Sync::Durable;
        release_gil_if(py, durable, append).map_err(spool_error)
    }

    /// Records `decision`'s rows without waiting for the disk: returns the ticket `decided`
    /// tells about (0 for a buffered spool: the rows are in the page cache already). Holds
    /// the GIL: it only copies the rows into the syncer's queue. Raises SpoolFullError as
    /// `append` does.
    fn append_nowait(&self, decision: &Decision, role: &str, tenant: &str) -> PyResult<u64> {
        let mut rows = Vec::with_capacity(1024);
        decision.copy_rows_into(role, tenant, &mut rows);
        self.inner.append_nowait(&rows).map_err(spool_error)
    }

    /// Whether ticket `ticket` is on disk: False while its group is still to be synced; its
    /// group's error (SpoolFullError, OSError) if the write or sync failed.
    fn decided(&self, ticket: u64) -> PyResult<bool> {
        self.inner.decided(ticket).map_err(spool_error)
    }

    /// The eventfd the syncer writes (an 8-byte count) once per decided group: an event
    /// loop reads it to learn that tickets were decided. None for a buffered spool.
    #[getter]
    fn wake_fd(&self) -> Option<i32> {
        self.inner.wake_fd()
    }

    /// Closes the active segment if it holds anything, so that the flusher may take it.
    fn seal(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.seal()).map_err(spool_error)
    }

    /// The complete segments' ids, oldest first.
    fn sealed(&self, py: Python<'_>) -> PyResult<Vec<u64>> {
        py.detach(|| self.inner.sealed()).map_err(spool_error)
    }

    /// Segment `id`: `(rows as COPY text, records, torn_bytes)`; `torn_bytes` counts what a
    /// crash left of an append that never completed.
    fn read<'py>(&self, py: Python<'py>, id: u64) -> PyResult<(Bound<'py, PyBytes>, usize, usize)> {
        let segment = py.detach(|| self.inner.read(id)).map_err(spool_error)?;
        Ok((
            PyBytes::new(py, &segment.payloads),
            segment.records,
            segment.torn_bytes,
        ))
    }

    /// Removes segment `id`, once its rows are committed.
    fn remove(&self, py: Python<'_>, id: u64) -> PyResult<()> {
        py.detach(|| self.inner.remove(id)).map_err(spool_error)
    }

    /// Bytes on disk not yet flushed.
    #[getter]
    fn bytes(&self) -> u64 {
        self.inner.bytes()
    }

    #[getter]
    fn directory(&self) -> PathBuf {
        self.inner.dir().to_path_buf()
    }
}
