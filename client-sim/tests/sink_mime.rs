//! The sink's fast attachment walker agrees with a full mail-parser parse on messages built the
//! way the proxy builds them (lettre: multipart/mixed around multipart/alternative, binary and
//! text attachments, base64 and 7bit).

use client_sim::sink::mime;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart, SinglePart};
use mail_parser::MessageParser;
use md5::{Digest, Md5};

fn full_parse(raw: &[u8]) -> Vec<[u8; 16]> {
    let message = MessageParser::default().parse(raw).expect("parse");
    message
        .attachments()
        .map(|p| Md5::digest(p.contents()).into())
        .collect()
}

fn build(attachments: &[(&str, &str, Vec<u8>)]) -> Vec<u8> {
    let alternative = MultiPart::alternative()
        .singlepart(SinglePart::plain("plain body".to_owned()))
        .singlepart(SinglePart::html("<p>html body</p>".to_owned()));
    let mut mixed = MultiPart::mixed().multipart(alternative);
    for (name, mime, content) in attachments {
        let ct = ContentType::parse(mime).expect("content type");
        mixed = mixed.singlepart(Attachment::new((*name).to_owned()).body(content.clone(), ct));
    }
    Message::builder()
        .from("a@x.test".parse().expect("from"))
        .to("b@y.test".parse().expect("to"))
        .subject("s")
        .multipart(mixed)
        .expect("build")
        .formatted()
}

#[test]
fn fast_walker_matches_mail_parser_on_proxy_shaped_mail() {
    let binary: Vec<u8> = (0..500_000u32).map(|i| (i * 31 % 256) as u8).collect();
    let text = b"Hello World! This is a test file.\r\n".repeat(100);
    let raw = build(&[
        ("document.bin", "application/octet-stream", binary.clone()),
        ("notes.txt", "text/plain", text.clone()),
        ("report.pdf", "application/pdf", b"%PDF-1.4 tiny".to_vec()),
    ]);
    let fast = mime::attachment_digests(&raw).expect("the walker handles lettre output");
    assert_eq!(fast.len(), 3);
    assert_eq!(fast, full_parse(&raw));
    assert_eq!(fast[0], <[u8; 16]>::from(Md5::digest(&binary)));
}

#[test]
fn fast_walker_finds_no_attachment_in_plain_alternative_mail() {
    let raw = build(&[]);
    assert_eq!(mime::attachment_digests(&raw), Some(vec![]));
    assert!(full_parse(&raw).is_empty());
}

#[test]
fn blast_messages_take_the_fast_path() {
    let args = client_sim::blast::BlastArgs {
        smtp: String::new(),
        connections: 1,
        messages: 1,
        size: 0,
        attachment_bytes: 100_000,
        mode: client_sim::blast::BlastMode::Pipelined,
        tenant: "t".to_owned(),
    };
    let mut raw = b"Message-ID: <1@b>\r\nX-Pressure-Created-Us: 1\r\n".to_vec();
    raw.extend_from_slice(&client_sim::blast::template(&args));
    raw.truncate(raw.len() - 3); // the ".\r\n" terminator is not part of the message
    let digests = mime::attachment_digests(&raw).expect("fast path");
    assert_eq!(digests, full_parse(&raw));
    let verdict = client_sim::sink::verify::verify(&raw);
    assert_eq!((verdict.verified, verdict.mismatches), (1, 0));
}
