//! The wrapping key: 32 bytes in a file beside the store, made once from
//! the operating system's randomness and readable by its owner only.
//!
//! The vault stores its identity and device keys sealed
//! ([`Output::Seal`](echo_core::vault::Output::Seal)); this key is what
//! seals them (with [`ChaChaKeyWrap`](echo_core::identity::ChaChaKeyWrap)).
//! Losing the file loses the vault's identity; the store alone is useless
//! to whoever copies it without the key.
//!
//! The file is written whole to a temporary name, synced, then renamed
//! into place (and the directory synced), so a crash while it is made
//! leaves either no key file or a complete one. A key file readable by
//! anyone but its owner is refused, as `ssh` refuses such a private key.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use echo_core::rng::{EngineRng, RandomUnavailable};
use zeroize::Zeroizing;

/// Bytes of the wrapping key.
pub const KEY_LEN: usize = 32;

/// Why the wrapping key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("reading or writing the key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the key file {path} holds {len} bytes, not {KEY_LEN}: it is damaged")]
    Length { path: PathBuf, len: u64 },
    #[error("the key file {path} can be read by others (mode {mode:o}); it must be 0600")]
    Permissions { path: PathBuf, mode: u32 },
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The key in the file at `path`, made first if there is none.
pub fn load_or_create(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyFileError> {
    match fs::File::open(path) {
        Ok(file) => read_key(path, file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => create(path),
        Err(e) => Err(io_error(path)(e)),
    }
}

fn read_key(path: &Path, mut file: fs::File) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyFileError> {
    let meta = file.metadata().map_err(io_error(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    if meta.len() != KEY_LEN as u64 {
        return Err(KeyFileError::Length {
            path: path.to_owned(),
            len: meta.len(),
        });
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    file.read_exact(key.as_mut()).map_err(io_error(path))?;
    Ok(key)
}

fn create(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyFileError> {
    let key = EngineRng::from_os()?.secret_seed();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| {
        let mut file = options.open(&tmp)?;
        // A leftover temporary file keeps its old mode: set it again.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(key.as_ref())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(path)
    })();
    written.map_err(io_error(path))?;
    Ok(key)
}

/// Makes the rename durable: syncs the directory holding `path`.
fn sync_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_read_back() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("wrap.key");
        let made = load_or_create(&path)?;
        let read = load_or_create(&path)?;
        assert_eq!(*made, *read);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
        }
        Ok(())
    }

    #[test]
    fn a_damaged_or_exposed_key_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("wrap.key");
        load_or_create(&path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
            assert!(matches!(
                load_or_create(&path),
                Err(KeyFileError::Permissions { .. })
            ));
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        }
        fs::OpenOptions::new()
            .append(true)
            .open(&path)?
            .write_all(b"x")?;
        assert!(matches!(
            load_or_create(&path),
            Err(KeyFileError::Length { len: 33, .. })
        ));
        Ok(())
    }
}
