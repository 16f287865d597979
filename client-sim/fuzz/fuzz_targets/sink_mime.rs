//! The sink's MIME handling on arbitrary messages: the fast attachment walker
//! (`sink::mime::attachment_digests`), the verdict (`sink::verify::verify`, with its mail-parser
//! fallback) and dot-unstuffing never panic, and unstuffing never grows a message.
#![no_main]

use bytes::Bytes;
use client_sim::sink::{mime, smtp, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let unstuffed = smtp::unstuff(Bytes::copy_from_slice(data));
    assert!(unstuffed.len() <= data.len());
    let _ = mime::attachment_digests(data);
    let verdict = verify::verify(data);
    assert_eq!(verdict.bytes, data.len() as u64);
});
