//! `sync::call::parse` on arbitrary response bodies from a tenant application: never panics; an
//! answer is `ok` only when the body is a JSON object whose `ok` is `true`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailproxy::sync::call;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let parsed = call::parse(data);
    let json = serde_json::from_slice::<Value>(data).ok();
    match (&parsed, json.as_ref().and_then(Value::as_object)) {
        (None, None) => {}
        (Some(r), Some(obj)) => {
            assert_eq!(r.ok, obj.get("ok") == Some(&Value::Bool(true)));
            if let Some(t) = r.next_sync_after {
                // Never NaN from a JSON number; strings may carry anything `f64::from_str` takes.
                let _ = t.ceil();
            }
        }
        (p, o) => panic!("parse {:?} disagrees with JSON object {:?}", p.is_some(), o.is_some()),
    }
});
