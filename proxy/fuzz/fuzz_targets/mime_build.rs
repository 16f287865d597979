//! `mail::build::build` on payloads that passed `normalise`: never panics, and hostile header
//! names, values and subjects cannot inject header lines (every line of the head is a header or
//! a folded continuation, and no custom header appears twice), and an attachment spliced into
//! the formatted message always reaches the wire.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailproxy::{
    mail::build,
    model::{stored::StoredMessage, submit},
};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(draft) = submit::normalise(&raw, 2) else {
        return;
    };
    let mut payload = Value::Object(draft.payload);
    payload["from"] = json!(draft.from.unwrap_or_else(|| "sender@example.test".into()));
    // The stored form the dispatcher reads.
    let Ok(payload) = serde_json::from_value::<StoredMessage>(payload) else {
        return;
    };
    // One attachment, so hostile headers and bodies meet the stand-in the builder splices out.
    let attachment = build::LoadedAttachment {
        filename: "a.bin".into(),
        mime: "application/octet-stream".into(),
        content: b"fuzz".to_vec().into(),
    };
    let id = "00000000-0000-0000-0000-000000000000";
    let Ok(built) = build::build(&payload, id, vec![attachment]) else {
        return;
    };
    let wire = built.message.to_vec();
    assert_eq!(wire.len(), built.message.len());
    assert!(
        wire.windows(8).any(|w| w == b"ZnV6eg=="),
        "the attachment is on the wire"
    );
    let text = String::from_utf8_lossy(&wire);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    for line in head.split("\r\n") {
        let folded = line.starts_with(' ') || line.starts_with('\t');
        let field = line
            .split_once(':')
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| (33..=126).contains(&b)));
        assert!(folded || field, "not a header line: {line:?}");
    }
});
