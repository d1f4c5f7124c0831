//! The decision spool: an append-only directory of segment files on local disk, where a
//! decision is recorded before its response is released, and from which a flusher moves whole
//! segments into PostgreSQL.
//!
//! A segment is a sequence of records, each `[len: u32 LE][crc32 of payload: u32 LE][payload]`.
//! Appends go to the one active segment; `seal` closes it (after `fdatasync`) and opens the
//! next, so every segment but the active one is complete and may be read and removed. A
//! segment is removed only after its rows are committed, so a crash between the two replays
//! it, and the database's unique key drops the rows already there.
//!
//! Durability is group commit: an appender that must wait for the disk either finds its
//! record already synced, or syncs the active file for itself and every record appended
//! before the sync began, while the others wait on a condition variable.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use thiserror::Error;

const HEADER: usize = 8;
const SUFFIX: &str = ".seg";

#[derive(Debug, Error)]
pub enum SpoolError {
    /// The spool holds its limit of unflushed bytes, or its disk is full: nothing new may be
    /// acknowledged until the flusher catches up or space returns.
    #[error("the decision spool is full ({0})")]
    Full(String),
    #[error("decision spool: {0}")]
    Io(#[from] io::Error),
    #[error("decision spool {0} is in use by another process")]
    Locked(PathBuf),
}

/// What a record append waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sync {
    /// `fdatasync` covers the record before `append` returns.
    Durable,
    /// The record is in the kernel's page cache: it survives the process, not the machine,
    /// until its segment is sealed (and synced).
    Buffered,
}

struct Active {
    id: u64,
    file: Arc<File>,
    len: u64,
    /// Records appended since the spool opened, across segments.
    appended: u64,
}

#[derive(Default)]
struct Synced {
    upto: u64,
    running: bool,
}

pub struct Spool {
    dir: PathBuf,
    sync: Sync,
    max_bytes: u64,
    segment_bytes: u64,
    active: Mutex<Active>,
    synced: Mutex<Synced>,
    synced_changed: Condvar,
    /// Bytes in every segment on disk, the active one included.
    bytes: AtomicU64,
    _lock: File,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one leaves plain counters behind, still consistent enough to go on.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}{SUFFIX}"))
}

fn crc(payload: &[u8]) -> u32 {
    crc32fast::hash(payload)
}

impl Spool {
    /// Opens (creating it) the spool in `dir`, which no other process may hold. Segments left
    /// by an earlier process stay, to be flushed first; appends go to a new segment after them.
    pub fn open(
        dir: &Path,
        sync: Sync,
        max_bytes: u64,
        segment_bytes: u64,
    ) -> Result<Self, SpoolError> {
        // Decisions hold features and tenant names: for this user only.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(dir.join("lock"))?;
        if lock_file.try_lock().is_err() {
            return Err(SpoolError::Locked(dir.to_path_buf()));
        }
        let mut ids = segments(dir)?;
        let mut on_disk = 0;
        for &id in &ids {
            on_disk += fs::metadata(segment_path(dir, id))?.len();
        }
        // An empty segment (the active one of a process that stopped) holds nothing to replay.
        let (empty, kept): (Vec<u64>, Vec<u64>) = ids
            .into_iter()
            .partition(|&id| fs::metadata(segment_path(dir, id)).is_ok_and(|m| m.len() == 0));
        for id in &empty {
            fs::remove_file(segment_path(dir, *id))?;
        }
        ids = kept;
        let id = ids.last().map_or(1, |last| last + 1);
        let active = Active {
            id,
            file: Arc::new(new_segment(dir, id, sync == Sync::Durable)?),
            len: 0,
            appended: 0,
        };
        let spool = Spool {
            dir: dir.to_path_buf(),
            sync,
            max_bytes,
            segment_bytes,
            active: Mutex::new(active),
            synced: Mutex::new(Synced::default()),
            synced_changed: Condvar::new(),
            bytes: AtomicU64::new(on_disk),
            _lock: lock_file,
        };
        Ok(spool)
    }

    pub fn sync(&self) -> Sync {
        self.sync
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes on disk waiting to be flushed, the active segment's included.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Appends one record; returns once `Sync` says it is recorded. A refused append leaves
    /// the segment as it was.
    pub fn append(&self, payload: &[u8]) -> Result<(), SpoolError> {
        let size = (HEADER + payload.len()) as u64;
        if self.bytes() + size > self.max_bytes {
            return Err(SpoolError::Full(format!(
                "{} bytes waiting, limit {}",
                self.bytes(),
                self.max_bytes
            )));
        }
        let len =
            u32::try_from(payload.len()).map_err(|_| io::Error::from(ErrorKind::InvalidInput))?;
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&crc(payload).to_le_bytes());
        record.extend_from_slice(payload);
        let (mine, closed) = {
            let mut active = lock(&self.active);
            let closed = if active.len >= self.segment_bytes {
                self.rotate(&mut active)?
            } else {
                None
            };
            if let Err(e) = (&*active.file).write_all(&record) {
                // Cut off a partial record, so that what follows is read; a record torn by a
                // crash instead ends the segment's replay.
                let _ = active.file.set_len(active.len);
                return Err(full_or_io(e));
            }
            active.len += size;
            active.appended += 1;
            self.bytes.fetch_add(size, Ordering::Relaxed);
            (active.appended, closed)
        };
        self.settle(closed)?;
        if self.sync == Sync::Durable {
            self.wait_synced(mine)?;
        }
        Ok(())
    }

    /// Closes the active segment if it holds anything, making it ready to flush.
    pub fn seal(&self) -> Result<(), SpoolError> {
        let mut active = lock(&self.active);
        let closed = if active.len > 0 {
            self.rotate(&mut active)?
        } else {
            None
        };
        drop(active);
        self.settle(closed)
    }

    /// The complete segments, oldest first: those the flusher may read and remove.
    pub fn sealed(&self) -> Result<Vec<u64>, SpoolError> {
        let active = lock(&self.active).id;
        Ok(segments(&self.dir)?
            .into_iter()
            .filter(|&id| id < active)
            .collect())
    }

    /// The payloads of segment `id`'s records, concatenated, and how many there are. A record
    /// that is torn (short, or failing its checksum: a crash mid-append) ends the segment: it
    /// and anything after it were never acknowledged.
    pub fn read(&self, id: u64) -> Result<Segment, SpoolError> {
        let data = fs::read(segment_path(&self.dir, id))?;
        let mut payloads = Vec::with_capacity(data.len());
        let (mut at, mut records) = (0, 0);
        while at + HEADER <= data.len() {
            let len =
                u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
            let sum = u32::from_le_bytes([data[at + 4], data[at + 5], data[at + 6], data[at + 7]]);
            let Some(payload) = data.get(at + HEADER..at + HEADER + len) else {
                break;
            };
            if crc(payload) != sum {
                break;
            }
            payloads.extend_from_slice(payload);
            records += 1;
            at += HEADER + len;
        }
        Ok(Segment {
            payloads,
            records,
            torn_bytes: data.len() - at,
        })
    }

    /// Removes segment `id`, once its rows are committed.
    pub fn remove(&self, id: u64) -> Result<(), SpoolError> {
        let path = segment_path(&self.dir, id);
        let size = fs::metadata(&path)?.len();
        fs::remove_file(path)?;
        self.forget(size);
        Ok(())
    }

    /// Takes `size` bytes off the count, which never goes below zero (a segment copied in by
    /// hand was never counted).
    fn forget(&self, size: u64) {
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(size))
            });
    }

    /// Closes the active segment and starts the next one. Durable: the closed one is synced
    /// first, under the lock, so that a sync of the next file covers every record appended
    /// so far. Buffered: no append waits for the disk, so the closed segment is returned, for
    /// the caller to sync once the lock is released (`settle`).
    fn rotate(&self, active: &mut Active) -> Result<Option<Arc<File>>, SpoolError> {
        let durable = self.sync == Sync::Durable;
        if durable {
            active.file.sync_data()?;
            let appended = active.appended;
            self.mark_synced(appended);
        }
        let closed = Arc::clone(&active.file);
        self.start_segment(active, active.id + 1)?;
        Ok((!durable).then_some(closed))
    }

    /// A buffered spool's closed segment on disk, with the new segment's name.
    fn settle(&self, closed: Option<Arc<File>>) -> Result<(), SpoolError> {
        if let Some(file) = closed {
            file.sync_data()?;
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    fn start_segment(&self, active: &mut Active, id: u64) -> Result<(), SpoolError> {
        let file = new_segment(&self.dir, id, self.sync == Sync::Durable)?;
        *active = Active {
            id,
            file: Arc::new(file),
            len: 0,
            appended: active.appended,
        };
        Ok(())
    }

    fn mark_synced(&self, upto: u64) {
        let mut synced = lock(&self.synced);
        synced.upto = synced.upto.max(upto);
        self.synced_changed.notify_all();
    }

    /// Returns once record number `mine` is on disk, syncing for every waiter when no one is.
    fn wait_synced(&self, mine: u64) -> Result<(), SpoolError> {
        let mut synced = lock(&self.synced);
        loop {
            if synced.upto >= mine {
                return Ok(());
            }
            if !synced.running {
                synced.running = true;
                drop(synced);
                let (file, upto) = {
                    let active = lock(&self.active);
                    (Arc::clone(&active.file), active.appended)
                };
                let result = file.sync_data();
                synced = lock(&self.synced);
                synced.running = false;
                if result.is_ok() {
                    synced.upto = synced.upto.max(upto);
                }
                self.synced_changed.notify_all();
                result.map_err(full_or_io)?;
            } else {
                synced = self
                    .synced_changed
                    .wait(synced)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}

/// The segments in `dir`, oldest first.
fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name.strip_suffix(SUFFIX).and_then(|s| s.parse().ok()) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// A new segment file; `durable`: its name synced too (a buffered spool syncs it later).
fn new_segment(dir: &Path, id: u64, durable: bool) -> Result<File, SpoolError> {
    let path = segment_path(dir, id);
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(full_or_io)?;
    // The new name must survive a crash, or the records appended to it would vanish with it.
    if durable {
        File::open(dir)?.sync_all().map_err(full_or_io)?;
    }
    Ok(file)
}

fn full_or_io(e: io::Error) -> SpoolError {
    match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => SpoolError::Full(e.to_string()),
        _ => SpoolError::Io(e),
    }
}

/// A sealed segment's contents.
pub struct Segment {
    pub payloads: Vec<u8>,
    pub records: usize,
    /// Bytes after the last whole record: a torn append, never acknowledged.
    pub torn_bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ferroscore-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn records_survive_reopening_in_order() -> Result<(), SpoolError> {
        let dir = temp("reopen");
        {
            let spool = Spool::open(&dir, Sync::Durable, 1 << 20, 1 << 20)?;
            spool.append(b"a\n")?;
            spool.seal()?;
            spool.append(b"b\n")?;
        }
        let spool = Spool::open(&dir, Sync::Buffered, 1 << 20, 1 << 20)?;
        let sealed = spool.sealed()?;
        assert_eq!(sealed.len(), 2); // "a", and "b" left active by the first process
        let all: Vec<u8> = sealed
            .iter()
            .flat_map(|&id| spool.read(id).map(|s| s.payloads).unwrap_or_default())
            .collect();
        assert_eq!(all, b"a\nb\n");
        for id in sealed {
            spool.remove(id)?;
        }
        spool.append(b"c\n")?;
        spool.seal()?;
        assert_eq!(spool.read(spool.sealed()?[0])?.payloads, b"c\n");
        fs::remove_dir_all(dir)?;
        Ok(())
    }

    #[test]
    fn a_torn_record_ends_its_segment() -> Result<(), SpoolError> {
        let dir = temp("torn");
        let spool = Spool::open(&dir, Sync::Buffered, 1 << 20, 1 << 20)?;
        spool.append(b"whole\n")?;
        spool.append(b"torn!\n")?;
        spool.seal()?;
        let id = spool.sealed()?[0];
        let path = segment_path(&dir, id);
        let mut data = fs::read(&path)?;
        let last = data.len() - 1;
        data[last] ^= 1;
        fs::write(&path, &data)?;
        let segment = spool.read(id)?;
        assert_eq!(
            (
                segment.payloads.as_slice(),
                segment.records,
                segment.torn_bytes
            ),
            (&b"whole\n"[..], 1, 14)
        );
        fs::remove_dir_all(dir)?;
        Ok(())
    }

    #[test]
    fn the_limit_refuses_and_a_second_process_is_locked_out() -> Result<(), SpoolError> {
        let dir = temp("limit");
        let spool = Spool::open(&dir, Sync::Durable, 40, 1 << 20)?;
        spool.append(&[b'x'; 20])?;
        assert!(matches!(
            spool.append(&[b'x'; 20]),
            Err(SpoolError::Full(_))
        ));
        assert!(matches!(
            Spool::open(&dir, Sync::Durable, 40, 1 << 20),
            Err(SpoolError::Locked(_))
        ));
        spool.seal()?;
        for id in spool.sealed()? {
            spool.remove(id)?;
        }
        spool.append(&[b'x'; 20])?;
        fs::remove_dir_all(dir)?;
        Ok(())
    }

    #[test]
    fn concurrent_durable_appends_are_all_recorded() -> Result<(), SpoolError> {
        let dir = temp("group");
        let spool = Arc::new(Spool::open(&dir, Sync::Durable, 1 << 30, 256)?);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let spool = Arc::clone(&spool);
                std::thread::spawn(move || {
                    (0..50).try_for_each(|i| spool.append(format!("{t} {i}\n").as_bytes()))
                })
            })
            .collect();
        for t in threads {
            t.join()
                .map_err(|_| io::Error::other("appender panicked"))??;
        }
        spool.seal()?;
        let mut lines = 0;
        for id in spool.sealed()? {
            lines += spool.read(id)?.records;
        }
        assert_eq!(lines, 400);
        fs::remove_dir_all(dir)?;
        Ok(())
    }
}
