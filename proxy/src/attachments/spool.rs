//! The download spool (PROTOCOL.md §5.6): fetched bytes are hashed (MD5) as they arrive, kept in
//! memory while small, and spilled to an unnamed-after-use temporary file in `GMP_SPOOL_DIR`
//! beyond [`SPILL_BYTES`], so a large download is never buffered whole while it streams. The cap
//! (`GMP_MAX_ATTACHMENT_BYTES`) stops the write at the first byte over it.

use std::{fs::File, io, os::unix::fs::FileExt, path::PathBuf, sync::Arc};

use bytes::{Bytes, BytesMut};
use mailproxy_proto::md5::Md5;
use tokio::io::AsyncWriteExt;

/// Bytes kept in memory per download before it spills to a file.
pub const SPILL_BYTES: usize = 1024 * 1024;

/// Content of a loaded attachment: in memory, or in a file read positionally (so one file can be
/// shared by several readers).
#[derive(Debug, Clone)]
pub enum Spool {
    /// Small content, or content that was already in memory (base64, memory cache).
    Memory(Bytes),
    /// Spilled or disk-cached content.
    File(Arc<SpoolFile>),
}

/// An open file of known length; the temporary name, if any, is removed on drop.
#[derive(Debug)]
pub struct SpoolFile {
    /// Open handle (reads use `read_at`, so the handle has no shared cursor).
    pub file: File,
    /// Length in bytes.
    pub len: u64,
    /// The temporary path of a spilled download (None for disk-cache files).
    pub temp: Option<tempfile::TempPath>,
}

impl Spool {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Spool::Memory(b) => b.len() as u64,
            Spool::File(f) => f.len,
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The content in memory (reads a file in a blocking task).
    pub async fn to_bytes(&self) -> io::Result<Bytes> {
        match self {
            Spool::Memory(b) => Ok(b.clone()),
            Spool::File(f) => {
                let f = f.clone();
                tokio::task::spawn_blocking(move || {
                    let len = usize::try_from(f.len).map_err(io::Error::other)?;
                    let mut buf = vec![0u8; len];
                    f.file.read_exact_at(&mut buf, 0)?;
                    Ok(Bytes::from(buf))
                })
                .await
                .map_err(io::Error::other)?
            }
        }
    }
}

/// Why a spool write failed.
#[derive(Debug)]
pub enum SpoolError {
    /// The content is larger than the cap.
    Cap,
    /// The spool file could not be written.
    Io(io::Error),
}

/// Content and its MD5, once a download completed.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The content.
    pub spool: Spool,
    /// Lower-case hex MD5 of the content.
    pub md5: String,
}

/// Receives a download chunk by chunk.
pub struct SpoolWriter {
    buf: BytesMut,
    file: Option<(tokio::fs::File, tempfile::TempPath)>,
    hasher: Md5,
    len: u64,
    cap: u64,
    dir: Option<PathBuf>,
}

impl SpoolWriter {
    /// A writer spilling into `dir` (None = the system temporary folder), refusing more than `cap`
    /// bytes.
    pub fn new(dir: Option<PathBuf>, cap: u64) -> Self {
        SpoolWriter {
            buf: BytesMut::new(),
            file: None,
            hasher: Md5::new(),
            len: 0,
            cap,
            dir,
        }
    }

    /// Appends a chunk.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), SpoolError> {
        if self.len + chunk.len() as u64 > self.cap {
            return Err(SpoolError::Cap);
        }
        self.len += chunk.len() as u64;
        self.hasher.update(chunk);
        if self.file.is_none() && self.buf.len() + chunk.len() <= SPILL_BYTES {
            self.buf.extend_from_slice(chunk);
            return Ok(());
        }
        if self.file.is_none() {
            self.spill().await.map_err(SpoolError::Io)?;
        }
        if let Some((f, _)) = self.file.as_mut() {
            f.write_all(chunk).await.map_err(SpoolError::Io)?;
        }
        Ok(())
    }

    async fn spill(&mut self) -> io::Result<()> {
        let dir = self.dir.clone().unwrap_or_else(std::env::temp_dir);
        let named = tokio::task::spawn_blocking(move || {
            tempfile::Builder::new()
                .prefix("gmp-spool-")
                .tempfile_in(dir)
        })
        .await
        .map_err(io::Error::other)??;
        let (file, path) = named.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        file.write_all(&self.buf).await?;
        self.buf = BytesMut::new();
        self.file = Some((file, path));
        Ok(())
    }

    /// Finishes the download: the content and its MD5.
    pub async fn finish(self) -> io::Result<Fetched> {
        let md5 = hex::encode(
            self.hasher
                .finalize()
                .ok_or_else(|| io::Error::other("MD5 of the download failed (OpenSSL)"))?,
        );
        let spool = match self.file {
            None => Spool::Memory(self.buf.freeze()),
            Some((mut f, temp)) => {
                f.flush().await?;
                let file = f.into_std().await;
                Spool::File(Arc::new(SpoolFile {
                    file,
                    len: self.len,
                    temp: Some(temp),
                }))
            }
        };
        Ok(Fetched { spool, md5 })
    }
}

/// The lower-case hex MD5 of bytes in memory.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_content_stays_in_memory_and_large_spills() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::new(Some(dir.path().into()), u64::MAX);
        w.write(b"hello").await.unwrap();
        let f = w.finish().await.unwrap();
        assert!(matches!(f.spool, Spool::Memory(_)));
        assert_eq!(f.md5, "5d41402abc4b2a76b9719d911017c592");

        let data: Vec<u8> = (0..3 * SPILL_BYTES).map(|i| (i % 251) as u8).collect();
        let mut w = SpoolWriter::new(Some(dir.path().into()), u64::MAX);
        for c in data.chunks(64 * 1024) {
            w.write(c).await.unwrap();
        }
        let f = w.finish().await.unwrap();
        assert!(matches!(f.spool, Spool::File(_)));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(f.md5, md5_hex(&data));
        assert_eq!(f.spool.to_bytes().await.unwrap(), Bytes::from(data));
        drop(f);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the spill file is removed with its last reader"
        );
    }

    #[tokio::test]
    async fn the_cap_stops_the_write() {
        let mut w = SpoolWriter::new(None, 10);
        w.write(b"0123456789").await.unwrap();
        assert!(matches!(w.write(b"x").await, Err(SpoolError::Cap)));
    }
}
