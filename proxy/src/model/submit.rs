//! Message normalisation and validation (PROTOCOL.md §3.6): one normaliser for every entry point
//! (classic and generated REST routes, inline sync messages). Aliases are mapped first
//! (`sender` → `from`, `recipient_email` → `to`, `body_text`/`body_html` → `body`), then fields
//! are checked in the contract's order, each failure with its exact reason string.
//!
//! Tenant and account resolution need the database and happen in [`crate::intake`].

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{address, attachment};

/// A message that passed the checks that need no database.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// The tenant's message id.
    pub id: String,
    /// Tenant named in the message (or None).
    pub tenant_id: Option<String>,
    /// Account named in the message (or None: the tenant's default).
    pub account_id: Option<String>,
    /// From, if given (else the account's `sender_email`).
    pub from: Option<String>,
    /// Priority 0..3.
    pub priority: i64,
    /// Not before this Unix second.
    pub deferred_ts: Option<i64>,
    /// Batch code.
    pub batch_code: Option<String>,
    /// The canonical payload (without `tenant_id`, `account_id` and `from` until resolved).
    pub payload: Map<String, Value>,
}

/// A refused message and the contract's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The id, when the message had one.
    pub id: Option<String>,
    /// From the normaliser: the tenant the message names, which proves nothing (any caller can
    /// write any name); [`crate::intake`] files the rejection under the caller's tenant instead.
    pub tenant_id: Option<String>,
    /// One of the contract's exact reasons.
    pub reason: String,
}

impl Rejection {
    fn new(raw: &Map<String, Value>, reason: impl Into<String>) -> Self {
        let s = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_string);
        Rejection {
            id: s("id").filter(|i| !i.is_empty()),
            tenant_id: s("tenant_id"),
            reason: reason.into(),
        }
    }
}

/// Priority from an integer, a numeric string or a label; None when invalid.
pub fn parse_priority(v: &Value) -> Option<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?,
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "immediate" => 0,
            "high" => 1,
            "medium" => 2,
            "low" => 3,
            other => other.parse().ok()?,
        },
        _ => return None,
    };
    Some(n.clamp(0, 3))
}

/// Size limits of one message, each breach a rejection with its own reason (§3.6 (+)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most recipients (`to` + `cc` + `bcc`): `too many recipients`.
    pub max_recipients: usize,
    /// Most custom headers: `too many headers`.
    pub max_headers: usize,
    /// Longest custom header value in bytes: `header value too long`.
    pub max_header_value_bytes: usize,
    /// Longest subject in characters: `subject too long`.
    pub max_subject_chars: usize,
    /// Largest total of one message's inline (`base64`) attachments, decoded bytes: `inline
    /// attachments too large`. Inline content travels in the stored payload, so it is bounded
    /// here, before it is stored, rather than when it is sent.
    pub max_inline_attachment_bytes: u64,
}

/// Longest custom header name: a name and its colon fit the 78-character line of RFC 5322.
pub const MAX_HEADER_NAME: usize = 76;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_recipients: 100,
            max_headers: 50,
            max_header_value_bytes: 998,
            max_subject_chars: 998,
            max_inline_attachment_bytes: 10 * 1024 * 1024,
        }
    }
}

/// True for an RFC 5322 field name: printable ASCII without `:`, at most [`MAX_HEADER_NAME`].
fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_HEADER_NAME
        && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// Checks the custom headers against the limits; the reason of the first breach.
fn check_headers(h: &BTreeMap<String, String>, limits: &Limits) -> Result<(), &'static str> {
    if h.len() > limits.max_headers {
        return Err("too many headers");
    }
    for (name, value) in h {
        if !valid_header_name(name) {
            return Err("invalid header name");
        }
        if value.len() > limits.max_header_value_bytes {
            return Err("header value too long");
        }
    }
    Ok(())
}

/// Normalises one raw message with the default [`Limits`]. `default_priority` is already
/// normalised.
pub fn normalise(raw: &Value, default_priority: i64) -> Result<Draft, Rejection> {
    normalise_limited(raw, default_priority, &Limits::default())
}

/// Normalises one raw message under `limits`.
pub fn normalise_limited(
    raw: &Value,
    default_priority: i64,
    limits: &Limits,
) -> Result<Draft, Rejection> {
    let Some(obj) = raw.as_object() else {
        return Err(Rejection {
            id: None,
            tenant_id: None,
            reason: "invalid payload".into(),
        });
    };
    let m = apply_aliases(obj);
    let reject = |reason: &str| Rejection::new(&m, reason);
    let id = match m.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(reject("missing id")),
    };
    let str_field = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
    let from = str_field("from").filter(|s| !s.trim().is_empty());
    if let Some(f) = &from
        && address::parse(f).is_none()
    {
        return Err(reject("invalid from address"));
    }
    let to = address_list(m.get("to")).ok_or_else(|| reject("invalid to address"))?;
    if to.is_empty() {
        return Err(reject("missing to"));
    }
    if to.iter().any(|a| address::parse(a).is_none()) {
        return Err(reject("invalid to address"));
    }
    let mut lists = Vec::new();
    for key in ["cc", "bcc"] {
        let list =
            address_list(m.get(key)).ok_or_else(|| reject(&format!("invalid {key} address")))?;
        if list.iter().any(|a| address::parse(a).is_none()) {
            return Err(reject(&format!("invalid {key} address")));
        }
        lists.push(list);
    }
    if to.len() + lists.iter().map(Vec::len).sum::<usize>() > limits.max_recipients {
        return Err(reject("too many recipients"));
    }
    let subject = str_field("subject")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| reject("missing subject"))?;
    if subject.chars().count() > limits.max_subject_chars {
        return Err(reject("subject too long"));
    }
    let batch_code = str_field("batch_code").filter(|s| !s.is_empty());
    if batch_code
        .as_ref()
        .is_some_and(|b| b.chars().count() > 64 || b.contains(','))
    {
        return Err(reject("invalid batch_code"));
    }
    let attachments = attachments(m.get("attachments"))
        .map_err(|why| reject(&format!("invalid attachment: {why}")))?;
    if inline_bytes(&attachments) > limits.max_inline_attachment_bytes {
        return Err(reject("inline attachments too large"));
    }
    let priority = m
        .get("priority")
        .and_then(parse_priority)
        .unwrap_or(default_priority);
    let deferred_ts = m
        .get("deferred_ts")
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)));
    let headers: BTreeMap<String, String> = m
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    check_headers(&headers, limits).map_err(reject)?;
    let mut payload = Map::new();
    payload.insert("id".into(), json!(id));
    payload.insert("to".into(), json!(to));
    let [cc, bcc] = [&lists[0], &lists[1]];
    if !cc.is_empty() {
        payload.insert("cc".into(), json!(cc));
    }
    if !bcc.is_empty() {
        payload.insert("bcc".into(), json!(bcc));
    }
    payload.insert("subject".into(), json!(subject));
    payload.insert("body".into(), json!(str_field("body").unwrap_or_default()));
    let content_type = if str_field("content_type").as_deref() == Some("html") {
        "html"
    } else {
        "plain"
    };
    payload.insert("content_type".into(), json!(content_type));
    for key in ["body_html", "reply_to", "return_path", "message_id"] {
        if let Some(v) = str_field(key).filter(|s| !s.is_empty()) {
            payload.insert(key.into(), json!(v));
        }
    }
    if !headers.is_empty() {
        payload.insert("headers".into(), json!(headers));
    }
    if !attachments.is_empty() {
        payload.insert("attachments".into(), Value::Array(attachments));
    }
    payload.insert("priority".into(), json!(priority));
    if let Some(b) = &batch_code {
        payload.insert("batch_code".into(), json!(b));
    }
    Ok(Draft {
        id,
        tenant_id: str_field("tenant_id").filter(|s| !s.is_empty()),
        account_id: str_field("account_id").filter(|s| !s.is_empty()),
        from,
        priority,
        deferred_ts,
        batch_code,
        payload,
    })
}

/// Maps the simulated client's aliases onto canonical keys; canonical keys win.
fn apply_aliases(obj: &Map<String, Value>) -> Map<String, Value> {
    let mut m = obj.clone();
    for (alias, canon) in [("sender", "from"), ("from_addr", "from")] {
        if let Some(v) = obj.get(alias) {
            m.entry(canon).or_insert_with(|| v.clone());
        }
    }
    if let Some(v) = obj.get("recipient_email") {
        m.entry("to").or_insert_with(|| json!([v]));
    }
    if !obj.contains_key("body") {
        match (obj.get("body_text"), obj.get("body_html")) {
            (Some(text), _) => {
                m.insert("body".into(), text.clone());
                m.insert("content_type".into(), json!("plain"));
            }
            (None, Some(html)) => {
                m.insert("body".into(), html.clone());
                m.insert("content_type".into(), json!("html"));
                m.remove("body_html");
            }
            (None, None) => {}
        }
    }
    m
}

/// A list or comma-separated string of addresses, empty items dropped; None when malformed.
fn address_list(v: Option<&Value>) -> Option<Vec<String>> {
    let items: Vec<String> = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<_>>()?,
        Some(_) => return None,
    };
    Some(
        items
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

/// Checks and normalises the attachment list (§5.1).
fn attachments(v: Option<&Value>) -> Result<Vec<Value>, String> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err("attachments must be a list".into()),
    };
    list.iter().map(attachment_one).collect()
}

/// Decoded size of the normalised `base64` attachments (3 bytes per 4 characters).
fn inline_bytes(attachments: &[Value]) -> u64 {
    attachments
        .iter()
        .filter(|a| a["fetch_mode"] == "base64")
        .filter_map(|a| a["storage_path"].as_str())
        .map(|p| p.strip_prefix("base64:").unwrap_or(p).len() as u64 / 4 * 3)
        .sum()
}

fn attachment_one(v: &Value) -> Result<Value, String> {
    let a = v.as_object().ok_or("not an object")?;
    let filename = a
        .get("filename")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if filename.is_empty() || filename.chars().count() > 255 {
        return Err("filename empty or longer than 255 characters".into());
    }
    let path = a
        .get("storage_path")
        .or_else(|| a.get("content"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("no storage_path")?;
    let mode = match a.get("fetch_mode").and_then(Value::as_str) {
        Some(m) => attachment::normalise_mode(m).ok_or(format!("bad fetch_mode {m:?}"))?,
        None => attachment::infer_mode(path).0,
    };
    if let Some(md5) = a.get("content_md5").and_then(Value::as_str)
        && (md5.len() != 32 || !md5.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err("content_md5 is not 32 hex digits".into());
    }
    let mut out = a.clone();
    out.remove("content");
    out.insert("storage_path".into(), json!(path));
    out.insert("fetch_mode".into(), json!(mode));
    if let Some(mime) = a
        .get("content_type")
        .filter(|_| !a.contains_key("mime_type"))
    {
        out.insert("mime_type".into(), mime.clone());
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: Value) -> Draft {
        normalise(&v, 2).expect("valid")
    }

    fn reason(v: Value) -> String {
        normalise(&v, 2).expect_err("invalid").reason
    }

    #[test]
    fn aliases_of_the_simulated_client_are_understood() {
        let d = ok(
            json!({"id":"m1","sender":"a@x.io","recipient_email":"b@y.io","subject":"s",
            "body_text":"t","body_html":"<p>h</p>","priority":"high"}),
        );
        assert_eq!(d.from.as_deref(), Some("a@x.io"));
        assert_eq!(d.payload["to"], json!(["b@y.io"]));
        assert_eq!(d.payload["body"], json!("t"));
        assert_eq!(d.payload["body_html"], json!("<p>h</p>"));
        assert_eq!(d.priority, 1);
        let html_only =
            ok(json!({"id":"m2","to":"b@y.io, ,c@y.io","subject":"s","body_html":"<b>x</b>"}));
        assert_eq!(html_only.payload["content_type"], json!("html"));
        assert_eq!(html_only.payload["to"], json!(["b@y.io", "c@y.io"]));
    }

    #[test]
    fn priorities_clamp_and_fall_back() {
        assert_eq!(
            ok(json!({"id":"a","to":["b@c"],"subject":"s","priority":-4})).priority,
            0
        );
        assert_eq!(
            ok(json!({"id":"a","to":["b@c"],"subject":"s","priority":"9"})).priority,
            3
        );
        assert_eq!(
            ok(json!({"id":"a","to":["b@c"],"subject":"s","priority":"urgent"})).priority,
            2
        );
    }

    #[test]
    fn each_defect_has_its_exact_reason() {
        assert_eq!(reason(json!([1])), "invalid payload");
        assert_eq!(reason(json!({"to":["b@c"],"subject":"s"})), "missing id");
        assert_eq!(reason(json!({"id":"a","subject":"s"})), "missing to");
        assert_eq!(
            reason(json!({"id":"a","to":["invalid-no-at"],"subject":"s"})),
            "invalid to address"
        );
        assert_eq!(
            reason(json!({"id":"a","to":["b@c"],"cc":"@x","subject":"s"})),
            "invalid cc address"
        );
        assert_eq!(
            reason(json!({"id":"a","from":"x","to":["b@c"],"subject":"s"})),
            "invalid from address"
        );
        assert_eq!(reason(json!({"id":"a","to":["b@c"]})), "missing subject");
        assert_eq!(
            reason(json!({"id":"a","to":["b@c"],"subject":"s","batch_code":"a,b"})),
            "invalid batch_code"
        );
        let bad_att = reason(
            json!({"id":"a","to":["b@c"],"subject":"s","attachments":[{"filename":"x","storage_path":"p","fetch_mode":"ftp"}]}),
        );
        assert!(bad_att.starts_with("invalid attachment: "), "{bad_att}");
    }

    #[test]
    fn limits_have_their_own_reasons() {
        let many: Vec<String> = (0..101).map(|i| format!("r{i}@x.io")).collect();
        assert_eq!(
            reason(json!({"id":"a","to":many,"subject":"s"})),
            "too many recipients"
        );
        let split = json!({"id":"a","to":many[..60],"cc":many[60..],"subject":"s"});
        assert_eq!(reason(split), "too many recipients");
        assert!(normalise(&json!({"id":"a","to":many[..100],"subject":"s"}), 2).is_ok());
        let long = "x".repeat(999);
        assert_eq!(
            reason(json!({"id":"a","to":["b@c"],"subject":long})),
            "subject too long"
        );
        let headers: Map<String, Value> =
            (0..51).map(|i| (format!("X-H{i}"), json!("v"))).collect();
        assert_eq!(
            reason(json!({"id":"a","to":["b@c"],"subject":"s","headers":headers})),
            "too many headers"
        );
        for bad in ["Bad Name", "X:Y", "", &"N".repeat(77), "X-\u{e9}"] {
            let h = json!({bad: "v"});
            assert_eq!(
                reason(json!({"id":"a","to":["b@c"],"subject":"s","headers":h})),
                "invalid header name",
                "{bad:?}"
            );
        }
        assert_eq!(
            reason(json!({"id":"a","to":["b@c"],"subject":"s","headers":{"X-A": long}})),
            "header value too long"
        );
        let tight = Limits {
            max_recipients: 1,
            ..Limits::default()
        };
        let two = json!({"id":"a","to":["b@c"],"bcc":["d@e"],"subject":"s"});
        assert_eq!(
            normalise_limited(&two, 2, &tight).unwrap_err().reason,
            "too many recipients"
        );
    }

    #[test]
    fn attachments_get_an_explicit_mode() {
        let d = ok(json!({"id":"a","to":["b@c"],"subject":"s",
            "attachments":[{"filename":"n.txt","content":"base64:SGk="},{"filename":"r.pdf","storage_path":"doc_id=1"}]}));
        let atts = d.payload["attachments"].as_array().unwrap();
        assert_eq!(atts[0]["fetch_mode"], json!("base64"));
        assert_eq!(atts[1]["fetch_mode"], json!("endpoint"));
    }
}
