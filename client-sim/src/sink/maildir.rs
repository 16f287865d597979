//! Optional keeping of received messages in a Maildir (`--maildir DIR`): written to `tmp/`, then
//! renamed into `new/`, so a reader never sees a half-written file.

use std::io;
use std::path::Path;

/// Creates `dir/{tmp,new,cur}`.
pub async fn prepare(dir: &Path) -> io::Result<()> {
    for sub in ["tmp", "new", "cur"] {
        tokio::fs::create_dir_all(dir.join(sub)).await?;
    }
    Ok(())
}

/// Stores one message under a unique name built from the time and `counter`.
pub async fn store(dir: &Path, message: &[u8], counter: u64) -> io::Result<()> {
    let name = format!(
        "{}.{}_{counter}.client-sim",
        crate::unix_micros(),
        std::process::id()
    );
    let tmp = dir.join("tmp").join(&name);
    tokio::fs::write(&tmp, message).await?;
    tokio::fs::rename(&tmp, dir.join("new").join(&name)).await
}
