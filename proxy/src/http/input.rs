//! Request input in the error shapes of PROTOCOL.md §3.2: a JSON body extractor whose failures are
//! 415 (a body not declared `application/json`), 422 (`json_invalid`) or 413 (`Request body too
//! large`), and typed reads of query parameters and body fields that answer 422 with the field's
//! location.

use std::{collections::HashMap, sync::Arc};

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{StatusCode, header, request::Parts},
};
use serde_json::{Map, Value};

use super::{
    AppState,
    auth::{Authed, Caller},
    record::Slot,
};
use crate::error::AppError;

/// A JSON body (an empty body is `{}`). A body must be declared `Content-Type:
/// application/json` (or `application/<x>+json`), else 415: a web page may send any site a
/// `text/plain` POST without asking the browser first, but not a JSON one, so a JSON-only API
/// cannot be driven by a cross-site form or `fetch`.
#[derive(Debug)]
pub struct Body(pub Value);

/// True for `application/json` and `application/<x>+json`, parameters (`charset`) ignored.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

fn unsupported_media_type() -> AppError {
    AppError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Content-Type must be application/json",
    )
}

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // A declared type must be JSON; an undeclared one is accepted only for an empty body.
        let declared = match req.headers().get(header::CONTENT_TYPE) {
            None => false,
            Some(v) if v.to_str().is_ok_and(is_json) => true,
            Some(_) => return Err(unsupported_media_type()),
        };
        let slot = req.extensions().get::<Arc<Slot>>().cloned();
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
            } else {
                AppError::unprocessable("", &rejection.body_text(), "body_unreadable")
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(Value::Object(Map::new())));
        }
        if !declared {
            return Err(unsupported_media_type());
        }
        if json_values_over(&bytes, MAX_JSON_VALUES) {
            return Err(AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request body has more than {MAX_JSON_VALUES} JSON values"),
            ));
        }
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
            AppError::unprocessable("", &format!("Invalid JSON: {e}"), "json_invalid")
        })?;
        if let Some(slot) = slot {
            slot.body(&body);
        }
        Ok(Body(body))
    }
}

/// Most JSON values (array elements, object members, scalars) a request body may hold. Parsed,
/// each value costs 32 to about 100 bytes whatever its text: a 64 MiB body of `[0,0,…]` held 33
/// million values, about a gigabyte. 500,000 is ten times a full batch of 1,000 messages with
/// recipients, headers and attachments, and at most about 50 MiB parsed.
pub const MAX_JSON_VALUES: usize = 500_000;

/// True when `json` holds more than `max` values, counted without parsing: the separators and
/// openings outside strings (`,` `[` `{`), a bound of the values within 1.
pub(crate) fn json_values_over(json: &[u8], max: usize) -> bool {
    let (mut n, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b',' | b'[' | b'{' => {
                n += 1;
                if n > max {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

impl Body {
    /// The body as an object, or 422.
    pub fn object(self) -> Result<Map<String, Value>, AppError> {
        match self.0 {
            Value::Object(m) => Ok(m),
            _ => Err(AppError::unprocessable(
                "",
                "Input should be a valid dictionary",
                "dict_type",
            )),
        }
    }
}

/// A tenant-scoped call with a JSON object body: the caller (its token checked first, as by
/// [`Authed`]), then the body as an object (422 otherwise).
#[derive(Debug)]
pub struct Posted {
    /// Who calls.
    pub caller: Caller,
    /// The body.
    pub body: Map<String, Value>,
}

impl FromRequest<AppState> for Posted {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        let (mut parts, body) = req.into_parts();
        let Authed(caller) = Authed::from_request_parts(&mut parts, state).await?;
        let body = Body::from_request(Request::from_parts(parts, body), state)
            .await?
            .object()?;
        Ok(Posted { caller, body })
    }
}

/// A tenant-scoped call that reads its query: the caller (checked first), then the parameters.
#[derive(Debug)]
pub struct Asked {
    /// Who calls.
    pub caller: Caller,
    /// The query parameters.
    pub q: HashMap<String, String>,
}

impl FromRequestParts<AppState> for Asked {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Authed(caller) = Authed::from_request_parts(parts, state).await?;
        let q = axum::extract::Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|q| q.0)
            .map_err(|e| AppError::unprocessable("", &e.body_text(), "query_invalid"))?;
        Ok(Asked { caller, q })
    }
}

/// Query parameters as strings.
pub type Query = axum::extract::Query<HashMap<String, String>>;

/// A string field of an object, if present and a string.
pub fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, AppError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(AppError::unprocessable(
            key,
            "Input should be a valid string",
            "string_type",
        )),
    }
}

/// A required string field.
pub fn required_str<'a>(m: &'a Map<String, Value>, key: &str) -> Result<&'a str, AppError> {
    str_of(m, key)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AppError::missing(key))
}

/// A boolean query parameter (`true/false/1/0/yes/no`).
pub fn flag(q: &HashMap<String, String>, key: &str) -> Result<bool, AppError> {
    match q.get(key) {
        None => Ok(false),
        Some(v) => crate::config::parse_bool(v)
            .map_err(|e| AppError::unprocessable(key, &e, "bool_parsing")),
    }
}

/// An integer query parameter with a default.
pub fn int(q: &HashMap<String, String>, key: &str, default: i64) -> Result<i64, AppError> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            AppError::unprocessable(key, "Input should be a valid integer", "int_parsing")
        }),
    }
}

/// An integer field of an object, if present.
pub fn int_of(m: &Map<String, Value>, key: &str) -> Result<Option<i64>, AppError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| {
            AppError::unprocessable(key, "Input should be a valid integer", "int_type")
        }),
    }
}

/// Body object merged with query parameters (generated GET routes read the query, POST the body).
pub fn params(q: &HashMap<String, String>) -> Map<String, Value> {
    q.iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{is_json, json_values_over};

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "text/plain; charset=application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "application/jsonp",
            "",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }

    #[test]
    fn values_are_counted_outside_strings_only() {
        assert!(json_values_over(b"[0,0,0,0]", 3));
        assert!(!json_values_over(b"[0,0,0,0]", 4));
        assert!(!json_values_over(br#"{"a":"x,y,[{","b":"\",,,"}"#, 2));
        assert!(
            json_values_over(br#"{"a":"\\",,,"}"#, 2),
            "an escaped backslash ends"
        );
    }
}
