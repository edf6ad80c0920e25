//! `echo-store-file`: the native [`ChunkStore`] — one `redb` database file.
//!
//! [`FileStore`] keeps all chunks in a single table of a
//! [redb](https://docs.rs/redb) file. Each [`ChunkStore::apply`] is one redb
//! write transaction committed with [`redb::Durability::Immediate`]: when it
//! returns `Ok` the batch is on disk (fsync'ed) and a crash — of the process
//! or the machine — keeps either all of it or, if it had not returned, none of
//! it. See `docs/adr/0002-native-store-redb.md`.
//!
//! # Corruption
//!
//! redb checksums its pages and verifies them when it repairs a database
//! after a crash, or — with [`FileStoreOptions::check_integrity_on_open`],
//! on by default — every time a file is opened. A file altered behind
//! redb's back then fails to open with [`StoreError::Corrupt`] naming its
//! path instead of being trusted. redb does *not* verify checksums on
//! ordinary reads, so damage that happens while a store is open is only
//! found at the next open; the engine's own chunk framing (CRC-32 per chunk)
//! catches it earlier. Should redb panic on a damaged file anyway, the panic
//! is caught, reported as [`StoreError::Corrupt`], and the handle refuses
//! further use.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use echo_core::store::{validate_key, validate_prefix, Batch, ChunkStore, Key, Op, StoreError};
use redb::{Database, Durability, ReadableDatabase, TableDefinition};

#[doc(hidden)]
pub mod crash;

/// The one table holding all chunks: key → value.
const CHUNKS: TableDefinition<&str, &[u8]> = TableDefinition::new("echo.chunks.v1");

/// How to open a [`FileStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStoreOptions {
    /// Verify the checksum of every page when opening (default `true`).
    /// Costs one read of the whole file per open; turning it off trusts the
    /// file unless redb has to recover from a crash.
    pub check_integrity_on_open: bool,
    /// Upper bound on redb's page cache, in bytes (default 64 MiB).
    pub cache_size: usize,
}

impl Default for FileStoreOptions {
    fn default() -> Self {
        FileStoreOptions {
            check_integrity_on_open: true,
            cache_size: 64 * 1024 * 1024,
        }
    }
}

/// A durable [`ChunkStore`] in one redb file.
///
/// One process may have a store open at a time; a second open fails with
/// [`StoreError::Locked`].
pub struct FileStore {
    db: Database,
    path: PathBuf,
    name: String,
    /// Set when redb panicked; the handle then refuses all further use.
    poisoned: OnceLock<String>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// Opens the store at `path` with default options, creating the file if
    /// it does not exist (its directory must).
    pub fn open(path: impl AsRef<Path>) -> Result<FileStore, StoreError> {
        Self::open_with(path, FileStoreOptions::default())
    }

    /// Opens the store at `path` with `options`.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: FileStoreOptions,
    ) -> Result<FileStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let name = path.display().to_string();
        if !path.exists() {
            create_atomically(&path, &options).map_err(|e| map_error(&name, None, e))?;
        }
        let opened = catch_unwind(|| -> Result<Database, redb::Error> {
            let db = Database::builder()
                .set_check_integrity_on_open(options.check_integrity_on_open)
                .set_cache_size(options.cache_size)
                .create(&path)?;
            // Make sure the table exists, so reads never meet a missing table.
            let txn = db.begin_write()?;
            txn.open_table(CHUNKS)?;
            txn.commit()?;
            Ok(db)
        });
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(map_error(&name, None, e)),
            Err(panic) => {
                return Err(StoreError::Corrupt {
                    store: name,
                    key: None,
                    message: format!(
                        "the database file could not be opened (redb panicked: {})",
                        panic_message(&panic)
                    ),
                })
            }
        };
        Ok(FileStore {
            db,
            path,
            name,
            poisoned: OnceLock::new(),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f`, turning redb errors and panics into [`StoreError`]s.
    fn guarded<T>(
        &self,
        key: Option<&str>,
        f: impl FnOnce() -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        if let Some(reason) = self.poisoned.get() {
            return Err(StoreError::Corrupt {
                store: self.name.clone(),
                key: key.map(str::to_owned),
                message: format!(
                    "the store was closed after an earlier failure ({reason}); reopen it"
                ),
            });
        }
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(result) => result.map_err(|e| map_error(&self.name, key, e)),
            Err(panic) => {
                let reason = format!("redb panicked: {}", panic_message(&panic));
                let _ = self.poisoned.set(reason.clone());
                Err(StoreError::Corrupt {
                    store: self.name.clone(),
                    key: key.map(str::to_owned),
                    message: reason,
                })
            }
        }
    }

    fn scan<T>(
        &self,
        prefix: &str,
        mut each: impl FnMut(&str, &[u8]) -> T,
    ) -> Result<Vec<T>, StoreError> {
        validate_prefix(prefix)?;
        self.guarded(None, || {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(CHUNKS)?;
            let mut out = Vec::new();
            for entry in table.range::<&str>(prefix..)? {
                let (key, value) = entry?;
                let key = key.value();
                if !key.starts_with(prefix) {
                    break;
                }
                out.push(each(key, value.value()));
            }
            Ok(out)
        })
    }
}

impl ChunkStore for FileStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        validate_key(key)?;
        self.guarded(Some(key), || {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(CHUNKS)?;
            Ok(table.get(key)?.map(|v| v.value().to_vec()))
        })
    }

    fn list_prefix(&self, prefix: &str) -> Result<Vec<(Key, Vec<u8>)>, StoreError> {
        self.scan(prefix, |k, v| (k.to_owned(), v.to_vec()))
    }

    fn list_keys(&self, prefix: &str) -> Result<Vec<Key>, StoreError> {
        self.scan(prefix, |k, _| k.to_owned())
    }

    fn apply(&mut self, batch: Batch) -> Result<(), StoreError> {
        batch.validate()?;
        if batch.is_empty() {
            return Ok(());
        }
        self.guarded(None, || {
            let mut txn = self.db.begin_write()?;
            txn.set_durability(Durability::Immediate)
                .map_err(redb::Error::from)?;
            {
                let mut table = txn.open_table(CHUNKS)?;
                for op in batch.ops() {
                    match op {
                        Op::Put { key, value } => {
                            table.insert(key.as_str(), value.as_slice())?;
                        }
                        Op::Delete { key } => {
                            table.remove(key.as_str())?;
                        }
                    }
                }
            }
            // Dropping an uncommitted transaction on error aborts it.
            txn.commit()?;
            Ok(())
        })
    }
}

/// Creates an empty store file at `path` so that a crash never leaves a
/// half-written one there: the database is initialised under a temporary
/// name in the same directory, synced, and then linked to `path` (a hard
/// link fails if `path` appeared meanwhile, so a concurrent creator's file
/// is never replaced). A crash before the link leaves only the temporary
/// file, which held no data; the next open creates the store afresh.
///
/// Without this, a process killed while redb wrote its first header left a
/// file that every later open refused as "not a redb database".
fn create_atomically(path: &Path, options: &FileStoreOptions) -> Result<(), redb::Error> {
    use std::io::ErrorKind;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store".to_owned());
    // Unique per process and call, so concurrent creators never share it.
    static CREATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CREATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = path.with_file_name(format!(".{file_name}.creating-{}-{n}", std::process::id()));
    // A leftover of an earlier process with this id held no data.
    let _ = std::fs::remove_file(&temp);
    let initialised = catch_unwind(|| -> Result<(), redb::Error> {
        let db = Database::builder()
            .set_cache_size(options.cache_size)
            .create(&temp)?;
        let txn = db.begin_write()?;
        txn.open_table(CHUNKS)?;
        txn.commit()?;
        drop(db);
        std::fs::File::open(&temp)?.sync_all()?;
        Ok(())
    })
    .unwrap_or_else(|panic| {
        Err(redb::Error::Corrupted(format!(
            "creating the store file failed (redb panicked: {})",
            panic_message(&panic)
        )))
    });
    let linked = initialised.and_then(|()| match std::fs::hard_link(&temp, path) {
        Ok(()) => Ok(()),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        // A file system without hard links: a plain rename (which would
        // replace a file created concurrently, a race such systems accept).
        Err(e) if e.kind() == ErrorKind::Unsupported => Ok(std::fs::rename(&temp, path)?),
        Err(e) => Err(e.into()),
    });
    let _ = std::fs::remove_file(&temp);
    linked?;
    // Make the new directory entry durable.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Maps a redb error onto the store's error codes.
fn map_error(store: &str, key: Option<&str>, error: redb::Error) -> StoreError {
    use std::io::ErrorKind;
    let store = store.to_owned();
    let key = key.map(str::to_owned);
    match error {
        redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => StoreError::Locked {
            store,
            message: format!("{error} (another process, or another handle in this one, has the file open)"),
        },
        redb::Error::Corrupted(message) => StoreError::Corrupt { store, key, message },
        redb::Error::RepairAborted => {
            StoreError::Corrupt { store, key, message: "repairing the database after a crash was aborted".into() }
        }
        redb::Error::Io(io) => match io.kind() {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
                StoreError::QuotaExceeded { store, message: io.to_string() }
            }
            ErrorKind::InvalidData | ErrorKind::UnexpectedEof => {
                StoreError::Corrupt { store, key, message: format!("not a valid store file: {io}") }
            }
            _ => StoreError::Io { store, key, message: io.to_string() },
        },
        redb::Error::UpgradeRequired(version) => StoreError::Io {
            store,
            key,
            message: format!(
                "the file uses redb file format {version}, which this build cannot open; open it with the ECHO version that wrote it"
            ),
        },
        other => StoreError::Io { store, key, message: other.to_string() },
    }
}
