//! The `filesystem` mode (contract §5.3): off unless `GMP_ATTACHMENT_BASE_DIR` is set. A path
//! is `/abs/path`, `mount:rel/path` or (with an explicit `fetch_mode`) a path relative to the
//! base folder. There is no storages table yet, so a `mount` is the name of a sub-folder of the
//! base folder. The path is first normalised lexically (so an escaping path that does not exist
//! is still "outside"), then canonicalised (symlinks resolved); both must lie inside the
//! canonical base folder.

use std::{
    io::ErrorKind,
    path::{Component, Path, PathBuf},
};

use tokio::io::AsyncReadExt;

use super::{Fail, http::spool_error, spool::SpoolWriter};

const OUTSIDE: &str = "Path outside attachment base directory";

/// The canonical path of a readable regular file inside `base`.
pub async fn resolve(base: Option<&Path>, path: &str) -> Result<PathBuf, Fail> {
    let base = base.ok_or_else(|| Fail::permanent("Filesystem attachments are disabled"))?;
    let base = tokio::fs::canonicalize(base)
        .await
        .map_err(|e| Fail::temporary(format!("Attachment base directory unavailable: {e}")))?;
    let joined = if path.starts_with('/') {
        PathBuf::from(path)
    } else if let Some((mount, rel)) = path.split_once(':') {
        base.join(mount).join(rel)
    } else {
        base.join(path)
    };
    if !normalise(&joined).starts_with(&base) {
        return Err(Fail::permanent(OUTSIDE));
    }
    let real = tokio::fs::canonicalize(&joined)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => Fail::permanent(format!("File not found: {path}")),
            _ => Fail::permanent(format!("Cannot open {path}: {e}")),
        })?;
    if !real.starts_with(&base) {
        return Err(Fail::permanent(OUTSIDE));
    }
    let meta = tokio::fs::metadata(&real)
        .await
        .map_err(|e| Fail::permanent(format!("Cannot open {path}: {e}")))?;
    if !meta.is_file() {
        return Err(Fail::permanent(format!("Not a regular file: {path}")));
    }
    Ok(real)
}

/// Removes `.` and resolves `..` without touching the file system.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Reads a resolved file into `writer`.
pub async fn read(
    real: &Path,
    path: &str,
    writer: &mut SpoolWriter,
    name: &str,
    cap: u64,
) -> Result<(), Fail> {
    let failed = |e: std::io::Error| Fail::permanent(format!("Cannot read {path}: {e}"));
    let mut file = tokio::fs::File::open(real).await.map_err(failed)?;
    if file.metadata().await.map_err(failed)?.len() > cap {
        return Err(Fail::over_cap(name, cap));
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).await.map_err(failed)?;
        if n == 0 {
            return Ok(());
        }
        writer
            .write(&buf[..n])
            .await
            .map_err(|e| spool_error(e, name, cap))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn paths_are_confined_to_the_base_folder() {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().join("base");
        std::fs::create_dir_all(base.join("mnt/sub")).unwrap();
        std::fs::write(base.join("mnt/a.txt"), b"a").unwrap();
        std::fs::write(root.path().join("secret.txt"), b"s").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret.txt"), base.join("mnt/link")).unwrap();
        let b = Some(base.as_path());
        let real = base.canonicalize().unwrap().join("mnt/a.txt");
        assert_eq!(resolve(b, "mnt:a.txt").await.unwrap(), real);
        let abs = real.display().to_string();
        assert_eq!(resolve(b, &abs).await.unwrap(), real);
        let why = |r: Result<PathBuf, Fail>| r.unwrap_err().why;
        assert_eq!(why(resolve(b, "mnt:../../secret.txt").await), OUTSIDE);
        assert_eq!(why(resolve(b, "mnt:../../nothing").await), OUTSIDE);
        assert_eq!(why(resolve(b, "mnt:/etc/hostname").await), OUTSIDE);
        assert_eq!(why(resolve(b, "/etc/hostname").await), OUTSIDE);
        assert_eq!(why(resolve(b, "mnt:link").await), OUTSIDE);
        assert_eq!(
            why(resolve(b, "mnt:none.pdf").await),
            "File not found: mnt:none.pdf"
        );
        assert_eq!(
            why(resolve(b, "mnt:sub").await),
            "Not a regular file: mnt:sub"
        );
        assert_eq!(
            why(resolve(None, "/x").await),
            "Filesystem attachments are disabled"
        );
    }
}
