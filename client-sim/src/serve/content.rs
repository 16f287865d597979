//! Attachment content derived from `(seed, size)`: a counter-based SplitMix64 stream, so any
//! chunk can be produced on its own and a 50 MiB attachment is generated chunk by chunk while it
//! is hashed or served, never held whole. Only `md5 → (seed, size)` is remembered, in a
//! [`Registry`] bounded by the bytes it represents (the upstream client's 100 MiB cache).

use std::collections::HashMap;
use std::convert::Infallible;

use bytes::Bytes;
use futures_util::Stream;
use mailproxy_proto::md5::Md5;

/// Bytes produced per generation step and per streamed body chunk.
pub const CHUNK: usize = 64 * 1024;

/// Largest size `/attachments` serves, so a crafted `storage_path` cannot ask for endless bytes.
pub const MAX_SERVE_BYTES: u64 = 256 * 1024 * 1024;

/// Upper bound on registry entries, whatever the byte bound.
const MAX_REGISTRY_ITEMS: usize = 100_000;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective 64-bit mix.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `buf` with the content of `seed` starting at byte `offset` (a multiple of 8).
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut word = offset / 8;
    for out in buf.chunks_mut(8) {
        word += 1;
        let bytes = mix64(seed.wrapping_add(word.wrapping_mul(GOLDEN))).to_le_bytes();
        out.copy_from_slice(&bytes[..out.len()]);
    }
}

/// MD5 of the content of `(seed, size)`, generated chunk by chunk.
pub fn md5_of(seed: u64, size: u64) -> [u8; 16] {
    // The content can be generated again: should OpenSSL fail part way, md-5 hashes it anew.
    md5_with(Md5::new(), seed, size)
        .or_else(|| md5_with(Md5::with_md5_crate(), seed, size))
        .unwrap_or_default()
}

fn md5_with(mut hasher: Md5, seed: u64, size: u64) -> Option<[u8; 16]> {
    let mut buf = vec![0u8; CHUNK];
    let mut offset = 0u64;
    while offset < size {
        let n = (size - offset).min(CHUNK as u64) as usize;
        fill(seed, offset, &mut buf[..n]);
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    hasher.finalize()
}

/// The content of `(seed, size)` as a stream of chunks, for a streamed response body.
pub fn stream(seed: u64, size: u64) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    futures_util::stream::unfold(0u64, move |offset| async move {
        if offset >= size {
            return None;
        }
        let n = (size - offset).min(CHUNK as u64) as usize;
        let mut buf = vec![0u8; n];
        fill(seed, offset, &mut buf);
        Some((Ok(Bytes::from(buf)), offset + n as u64))
    })
}

/// Where a piece of content comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRef {
    /// Content seed.
    pub seed: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Bounded `md5 → (seed, size)` map with random access for reuse draws. Full means full: like
/// the upstream cache, later content is not remembered (it stays servable through the seed in
/// its `storage_path`).
#[derive(Debug)]
pub struct Registry {
    map: HashMap<String, ContentRef>,
    keys: Vec<String>,
    bytes: u64,
    max_bytes: u64,
}

impl Registry {
    /// An empty registry representing at most `max_bytes` of content.
    pub fn new(max_bytes: u64) -> Self {
        Registry {
            map: HashMap::new(),
            keys: Vec::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// Remembers `md5` if there is room; returns whether it is now known.
    pub fn insert(&mut self, md5: &str, content: ContentRef) -> bool {
        if self.map.contains_key(md5) {
            return true;
        }
        let fits = self.bytes.saturating_add(content.size) <= self.max_bytes;
        if !fits || self.keys.len() >= MAX_REGISTRY_ITEMS {
            return false;
        }
        self.map.insert(md5.to_owned(), content);
        self.keys.push(md5.to_owned());
        self.bytes += content.size;
        true
    }

    /// The content behind `md5`, if remembered.
    pub fn get(&self, md5: &str) -> Option<ContentRef> {
        self.map.get(md5).copied()
    }

    /// The entry at `index % len`, or `None` when empty.
    pub fn pick(&self, index: u64) -> Option<(String, ContentRef)> {
        if self.keys.is_empty() {
            return None;
        }
        let key = &self.keys[(index % self.keys.len() as u64) as usize];
        self.map.get(key).map(|c| (key.clone(), *c))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Bytes of content represented.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The byte bound.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

/// A parsed `storage_path`: `hash=<md5>&size=<n>&seed=<n>` (other keys ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoragePath {
    /// Lower-case MD5 hex.
    pub hash: Option<String>,
    /// Size in bytes.
    pub size: Option<u64>,
    /// Content seed.
    pub seed: Option<u64>,
}

/// Builds the `storage_path` of generated content.
pub fn storage_path(md5: &str, content: ContentRef) -> String {
    format!("hash={md5}&size={}&seed={}", content.size, content.seed)
}

/// Parses a `storage_path`; the error says what is malformed.
pub fn parse_storage_path(raw: &str) -> Result<StoragePath, String> {
    let mut path = StoragePath {
        hash: None,
        size: None,
        seed: None,
    };
    for piece in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = piece
            .split_once('=')
            .ok_or_else(|| format!("'{piece}' is not key=value"))?;
        match key {
            "hash" => {
                let ok = value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit());
                if !ok {
                    return Err(format!("hash '{value}' is not 32 hex digits"));
                }
                path.hash = Some(value.to_ascii_lowercase());
            }
            "size" => {
                let size: u64 = value
                    .parse()
                    .map_err(|_| format!("size '{value}' is not a number"))?;
                if size > MAX_SERVE_BYTES {
                    return Err(format!("size {size} exceeds {MAX_SERVE_BYTES}"));
                }
                path.size = Some(size);
            }
            "seed" => {
                path.seed = Some(
                    value
                        .parse()
                        .map_err(|_| format!("seed '{value}' is not a number"))?,
                );
            }
            _ => {}
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_is_chunk_independent() {
        let mut whole = vec![0u8; 3 * CHUNK + 5];
        fill(7, 0, &mut whole);
        let mut tail = vec![0u8; CHUNK + 5];
        fill(7, 2 * CHUNK as u64, &mut tail);
        assert_eq!(&whole[2 * CHUNK..], &tail[..]);
    }

    #[test]
    fn md5_matches_one_shot_hash() {
        let mut whole = vec![0u8; 200_003];
        fill(42, 0, &mut whole);
        let expected: [u8; 16] = Md5::digest(&whole);
        assert_eq!(md5_of(42, 200_003), expected);
        assert_ne!(md5_of(43, 200_003), expected);
    }

    #[test]
    fn registry_stops_at_its_byte_bound() {
        let mut r = Registry::new(100);
        assert!(r.insert("a", ContentRef { seed: 1, size: 60 }));
        assert!(!r.insert("b", ContentRef { seed: 2, size: 60 }));
        assert!(r.insert("c", ContentRef { seed: 3, size: 40 }));
        assert_eq!((r.len(), r.bytes()), (2, 100));
        assert_eq!(r.pick(1).map(|(k, _)| k), Some("c".to_owned()));
    }

    #[test]
    fn storage_paths_parse_or_explain() {
        let p = parse_storage_path("hash=ABCDEF0123456789abcdef0123456789&size=10&seed=3");
        assert_eq!(
            p.as_ref().ok().and_then(|p| p.hash.clone()).as_deref(),
            Some("abcdef0123456789abcdef0123456789")
        );
        assert!(parse_storage_path("garbage").is_err());
        assert!(parse_storage_path("hash=xyz").is_err());
        assert!(parse_storage_path("hash=abcdef0123456789abcdef0123456789&size=-1").is_err());
        assert_eq!(
            parse_storage_path("doc_id=1").ok().and_then(|p| p.hash),
            None
        );
    }
}
