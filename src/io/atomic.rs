//! Atomic file writes: what a path held stays whole until the new contents are complete.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` by temp-file-and-rename, so that an interrupted write never leaves
/// a partial file and never destroys what `path` held:
/// - a symbolic link is followed: the file it points to is replaced (beside it), the link
///   stays;
/// - the replaced file's permissions are kept;
/// - a path that exists but is not a regular file (a directory, a device such as /dev/null)
///   is refused;
/// - the temporary name is unique to the process and the call, so concurrent writes to one
///   path each complete (the last rename wins).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_err = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let target = resolve_links(path).map_err(io_err)?;
    let permissions = match std::fs::metadata(&target) {
        Ok(m) if !m.is_file() => {
            return Err(Error::Invalid(format!(
                "{}: not a regular file{}; refusing to replace it",
                path.display(),
                if target != path {
                    format!(" ({} is)", target.display())
                } else {
                    String::new()
                }
            )))
        }
        Ok(m) => Some(m.permissions()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(e)),
    };
    let tmp = temporary_beside(&target);
    let result = (|| {
        // create_new: never truncate a file someone else made under this name.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if let Some(p) = permissions {
            f.set_permissions(p)?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp); // best effort: the error below is what matters
    }
    result.map_err(io_err)
}

/// `path` with every symbolic link along the last component followed (a link to a missing
/// file resolves to where that file would be).
fn resolve_links(path: &Path) -> std::io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    // As the kernel does, give up after 40 links (a loop).
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let dest = std::fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if dest.is_relative() => dir.join(dest),
                    _ => dest,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

/// A temporary name in the folder of `target`, unique to this process and call.
fn temporary_beside(target: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()))
}
