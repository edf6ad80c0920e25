//! `FileStore` against the shared store contract.

use echo_core::store::{contract, Batch, ChunkStore, Key, StoreError};
use echo_store_file::FileStore;

/// A store in its own temporary directory, removed on drop.
struct TempStore {
    store: FileStore,
    _dir: tempfile::TempDir,
}

impl ChunkStore for TempStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get(key)
    }
    fn list_prefix(&self, prefix: &str) -> Result<Vec<(Key, Vec<u8>)>, StoreError> {
        self.store.list_prefix(prefix)
    }
    fn list_keys(&self, prefix: &str) -> Result<Vec<Key>, StoreError> {
        self.store.list_keys(prefix)
    }
    fn apply(&mut self, batch: Batch) -> Result<(), StoreError> {
        self.store.apply(batch)
    }
}

#[test]
fn file_store_passes_the_contract() {
    contract::run_all(&mut || {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FileStore::open(dir.path().join("store.redb")).expect("open a new store");
        Box::new(TempStore { store, _dir: dir })
    });
}

#[test]
fn file_store_is_durable_across_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.redb");
    contract::durable(&mut || Box::new(FileStore::open(&path).expect("reopen the store")));
}

#[test]
fn a_second_open_is_refused_while_the_first_is_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.redb");
    let first = FileStore::open(&path).expect("first open");
    let err = FileStore::open(&path).expect_err("second open must fail");
    assert_eq!(err.code(), "store.locked", "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    drop(first);
    FileStore::open(&path).expect("open after the first handle is dropped");
}

#[test]
fn a_missing_directory_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("no/such/dir/store.redb");
    let err = FileStore::open(&path).expect_err("cannot create a file in a missing directory");
    assert_eq!(err.code(), "store.io", "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn creating_a_store_leaves_only_the_store_file_and_ignores_an_interrupted_creation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.redb");
    // What a creator killed before it linked the file into place leaves: a
    // half-written temporary file, and no store file.
    let leftover = dir.path().join(".store.redb.creating-1");
    std::fs::write(&leftover, b"half a header").expect("write leftover");
    {
        let mut store = FileStore::open(&path).expect("create the store");
        let mut batch = Batch::new();
        batch.put("k", b"v".to_vec());
        store.apply(batch).expect("write");
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec![".store.redb.creating-1", "store.redb"]);
    let store = FileStore::open(&path).expect("reopen");
    assert_eq!(store.get("k").expect("read"), Some(b"v".to_vec()));
}
