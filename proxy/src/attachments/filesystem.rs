//! The `filesystem` mode (PROTOCOL.md §5.3, issue 15 item 8): off unless `GMP_ATTACHMENT_BASE_DIR`
//! is set. Each tenant reads only its own folder, `<base>/<tenant_id>/`: a path is `/abs/path`
//! (inside that folder), `mount:rel/path` or (with an explicit `fetch_mode`) a path relative to
//! the folder. There is no storages table yet, so a `mount` is the name of a sub-folder of the
//! tenant's folder.
//!
//! The path is first normalised lexically (so an escaping path that does not exist is still
//! "outside"), then canonicalised (symlinks resolved); both must lie inside the tenant's
//! canonical folder. Then the file is opened without following a final symlink and without
//! blocking (a FIFO cannot hang the open), and the *opened* file's path, as the kernel reports it
//! (`/proc/self/fd`), is checked again: a symlink swapped in between the check and the open is
//! caught, because the check that counts is made on the file actually read.

use std::{
    io::ErrorKind,
    os::{fd::AsRawFd, unix::fs::OpenOptionsExt},
    path::{Component, Path, PathBuf},
};

use tokio::io::AsyncReadExt;

use super::{Fail, http::spool_error, spool::SpoolWriter};

const OUTSIDE: &str = "Path outside attachment base directory";

/// An opened attachment file, checked to lie in the tenant's folder and to be a regular file.
#[derive(Debug)]
pub struct Opened {
    file: std::fs::File,
    len: u64,
}

/// Opens the file `path` names for `tenant` (its id), inside `<base>/<tenant>/`.
pub async fn open(base: Option<&Path>, tenant: Option<&str>, path: &str) -> Result<Opened, Fail> {
    let base = base.ok_or_else(|| Fail::permanent("Filesystem attachments are disabled"))?;
    let tenant = tenant.filter(|t| is_folder_name(t)).ok_or_else(|| {
        Fail::permanent("Filesystem attachments need a tenant whose id is a folder name")
    })?;
    let base = tokio::fs::canonicalize(base)
        .await
        .map_err(|e| Fail::temporary(format!("Attachment base directory unavailable: {e}")))?;
    let root = base.join(tenant);
    let joined = if path.starts_with('/') {
        PathBuf::from(path)
    } else if let Some((mount, rel)) = path.split_once(':') {
        root.join(mount).join(rel)
    } else {
        root.join(path)
    };
    if !normalise(&joined).starts_with(&root) {
        return Err(Fail::permanent(OUTSIDE));
    }
    // The tenant's folder itself must be a folder of the base, not a link to another tenant's.
    let not_found = |e: std::io::Error| match e.kind() {
        ErrorKind::NotFound => Fail::permanent(format!("File not found: {path}")),
        _ => Fail::permanent(format!("Cannot open {path}: {e}")),
    };
    if tokio::fs::canonicalize(&root).await.map_err(not_found)? != root {
        return Err(Fail::permanent(OUTSIDE));
    }
    let real = tokio::fs::canonicalize(&joined).await.map_err(not_found)?;
    if !real.starts_with(&root) {
        return Err(Fail::permanent(OUTSIDE));
    }
    let path_owned = path.to_string();
    tokio::task::spawn_blocking(move || open_checked(&real, &root, &path_owned))
        .await
        .map_err(|e| Fail::temporary(format!("Cannot open {path}: {e}")))?
}

/// Opens `real` (already canonical) and checks the opened file, not the name: it must lie in
/// `root` and be a regular file.
fn open_checked(real: &Path, root: &Path, path: &str) -> Result<Opened, Fail> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(real)
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => Fail::permanent(format!("File not found: {path}")),
            // A symlink put in place of the file after the check (ELOOP with O_NOFOLLOW).
            _ if e.raw_os_error() == Some(libc::ELOOP) => Fail::permanent(OUTSIDE),
            _ => Fail::permanent(format!("Cannot open {path}: {e}")),
        })?;
    let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|e| Fail::permanent(format!("Cannot check {path}: {e}")))?;
    if !opened.starts_with(root) {
        return Err(Fail::permanent(OUTSIDE));
    }
    let meta = file
        .metadata()
        .map_err(|e| Fail::permanent(format!("Cannot open {path}: {e}")))?;
    if !meta.is_file() {
        return Err(Fail::permanent(format!("Not a regular file: {path}")));
    }
    Ok(Opened {
        file,
        len: meta.len(),
    })
}

/// True for a tenant id usable as one folder name: not empty, not `.` or `..`, no separator.
fn is_folder_name(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains(['/', '\0'])
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

/// Reads an opened file into `writer`.
pub async fn read(
    opened: Opened,
    path: &str,
    writer: &mut SpoolWriter,
    name: &str,
    cap: u64,
) -> Result<(), Fail> {
    if opened.len > cap {
        return Err(Fail::over_cap(name, cap));
    }
    let failed = |e: std::io::Error| Fail::permanent(format!("Cannot read {path}: {e}"));
    let mut file = tokio::fs::File::from_std(opened.file);
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

    async fn resolve(base: Option<&Path>, tenant: &str, path: &str) -> Result<PathBuf, Fail> {
        let opened = open(base, Some(tenant), path).await?;
        Ok(std::fs::read_link(format!("/proc/self/fd/{}", opened.file.as_raw_fd())).unwrap())
    }

    #[tokio::test]
    async fn paths_are_confined_to_the_tenant_folder() {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().join("base");
        std::fs::create_dir_all(base.join("t/mnt/sub")).unwrap();
        std::fs::create_dir_all(base.join("other/mnt")).unwrap();
        std::fs::write(base.join("t/mnt/a.txt"), b"a").unwrap();
        std::fs::write(base.join("other/mnt/b.txt"), b"b").unwrap();
        std::fs::write(root.path().join("secret.txt"), b"s").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret.txt"), base.join("t/mnt/link"))
            .unwrap();
        std::os::unix::fs::symlink(base.join("t/mnt/a.txt"), base.join("t/mnt/near")).unwrap();
        std::os::unix::fs::symlink(base.join("other"), base.join("t/mnt/peer")).unwrap();
        std::os::unix::fs::symlink(base.join("other"), base.join("alias")).unwrap();
        let b = Some(base.as_path());
        let real = base.canonicalize().unwrap().join("t/mnt/a.txt");
        assert_eq!(resolve(b, "t", "mnt:a.txt").await.unwrap(), real);
        assert_eq!(resolve(b, "t", "mnt/a.txt").await.unwrap(), real);
        assert_eq!(resolve(b, "t", "mnt:near").await.unwrap(), real);
        let abs = real.display().to_string();
        assert_eq!(resolve(b, "t", &abs).await.unwrap(), real);
        let why = |r: Result<PathBuf, Fail>| r.unwrap_err().why;
        assert_eq!(why(resolve(b, "t", "mnt:../../secret.txt").await), OUTSIDE);
        assert_eq!(why(resolve(b, "t", "mnt:../../nothing").await), OUTSIDE);
        assert_eq!(why(resolve(b, "t", "mnt:/etc/hostname").await), OUTSIDE);
        assert_eq!(why(resolve(b, "t", "/etc/hostname").await), OUTSIDE);
        assert_eq!(why(resolve(b, "t", "mnt:link").await), OUTSIDE);
        // Another tenant's files: by `..`, by absolute path, through a link.
        assert_eq!(why(resolve(b, "t", "../other/mnt/b.txt").await), OUTSIDE);
        let theirs = base.join("other/mnt/b.txt").display().to_string();
        assert_eq!(why(resolve(b, "t", &theirs).await), OUTSIDE);
        assert_eq!(why(resolve(b, "t", "mnt:peer/mnt/b.txt").await), OUTSIDE);
        assert_eq!(why(resolve(b, "alias", "mnt:b.txt").await), OUTSIDE);
        assert_eq!(
            why(resolve(b, "t", "mnt:none.pdf").await),
            "File not found: mnt:none.pdf"
        );
        assert_eq!(
            why(resolve(b, "t", "mnt:sub").await),
            "Not a regular file: mnt:sub"
        );
        assert_eq!(
            why(resolve(b, "nobody", "mnt:a.txt").await),
            "File not found: mnt:a.txt"
        );
        assert_eq!(
            why(resolve(None, "t", "/x").await),
            "Filesystem attachments are disabled"
        );
        for bad in ["", ".", "..", "a/b"] {
            assert!(why(resolve(b, bad, "mnt:a.txt").await).contains("folder name"));
        }
    }

    #[tokio::test]
    async fn the_opened_file_is_the_one_checked() {
        // A link swapped in after the name check: the open refuses the link (O_NOFOLLOW), and a
        // folder swapped for a link is caught by checking the opened file's own path.
        let root = tempfile::tempdir().unwrap();
        let base = root.path().join("base");
        std::fs::create_dir_all(base.join("t/mnt")).unwrap();
        std::fs::create_dir_all(root.path().join("out")).unwrap();
        std::fs::write(root.path().join("out/a.txt"), b"secret").unwrap();
        let tenant_root = base.canonicalize().unwrap().join("t");
        let checked = tenant_root.join("mnt/a.txt");
        std::os::unix::fs::symlink(root.path().join("out/a.txt"), &checked).unwrap();
        let err = open_checked(&checked, &tenant_root, "mnt:a.txt").unwrap_err();
        assert_eq!(err.why, OUTSIDE);
        std::fs::remove_file(&checked).unwrap();
        std::fs::remove_dir(tenant_root.join("mnt")).unwrap();
        std::os::unix::fs::symlink(root.path().join("out"), tenant_root.join("mnt")).unwrap();
        let err = open_checked(&checked, &tenant_root, "mnt:a.txt").unwrap_err();
        assert_eq!(err.why, OUTSIDE);
    }
}
