//! Files written whole or not at all: to a temporary name beside the target, then renamed,
//! so that a reader never sees half a report.

use std::io;
use std::path::{Path, PathBuf};

/// The temporary name `path` is written under before the rename: `PATH.tmp`.
pub(crate) fn temporary_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Writes `bytes` to `path` through a temporary file beside it and a rename. A path that
/// names something other than a regular file (`/dev/null`, a pipe, a terminal) is written
/// directly: renaming over it would replace the device or pipe with a file.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        return std::fs::write(path, bytes);
    }
    let tmp = temporary_path(path);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
