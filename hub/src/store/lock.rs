//! One process per data directory: two brokers writing the same store and sink buffers would
//! corrupt both. The lock is an OS file lock on `data_dir/weir.lock`, released by the OS however
//! the process ends (a `kill -9` leaves no stale lock), and the file says which pid holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::StoreError;

/// Held for as long as the process uses the data directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Creates `dir` if needed and locks it, or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, StoreError> {
        let failed = |source| StoreError::Dir { dir: dir.display().to_string(), source };
        std::fs::create_dir_all(dir).map_err(failed)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("weir.lock"))
            .map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                let holder = if pid.is_empty() { String::new() } else { format!(" (pid {pid})") };
                return Err(StoreError::Locked { dir: dir.display().to_string(), holder });
            }
            Err(TryLockError::Error(e)) => return Err(failed(e)),
        }
        file.set_len(0).and_then(|()| file.seek(SeekFrom::Start(0))).map_err(failed)?;
        write!(file, "{}", std::process::id()).map_err(failed)?;
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().expect("a directory");
        let first = DataDirLock::acquire(dir.path()).expect("the first lock");
        let err = DataDirLock::acquire(dir.path()).expect_err("a second lock of the same directory");
        let text = err.to_string();
        assert!(
            text.contains("in use by another Weir process") && text.contains(&std::process::id().to_string()),
            "{text}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again once the first is gone");
    }
}
