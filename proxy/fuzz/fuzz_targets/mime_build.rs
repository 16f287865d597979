//! `mail::build::build` on payloads that passed `normalise`: never panics, and hostile header
//! names, values and subjects cannot inject header lines (every line of the head is a header or
//! a folded continuation, and no custom header appears twice).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailproxy::{mail::build, model::submit};
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
    let Ok(built) = build::build(&payload, "00000000-0000-0000-0000-000000000000", Vec::new())
    else {
        return;
    };
    let text = String::from_utf8_lossy(&built.bytes);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    for line in head.split("\r\n") {
        let folded = line.starts_with(' ') || line.starts_with('\t');
        let field = line
            .split_once(':')
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| (33..=126).contains(&b)));
        assert!(folded || field, "not a header line: {line:?}");
    }
});
