//! Delivery report entries (PROTOCOL.md §4.2) from stored events, and the acknowledgement rules of
//! a response (§4.4).

use std::collections::HashSet;

use mailproxy_proto::sync::{DeliveryReportV1, RejectedRecipientV1};
use serde_json::Value;

use crate::store::events::PendingReport;

/// The report entry of one event.
pub fn entry(e: &PendingReport) -> DeliveryReportV1 {
    let mut r = DeliveryReportV1 {
        id: e.message_id.clone(),
        ..DeliveryReportV1::default()
    };
    let meta = e.metadata.as_ref();
    let meta_str = |k: &str| {
        meta.and_then(|m| m.get(k)).and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_i64().map(|n| n.to_string()))
        })
    };
    match e.event_type.as_str() {
        "sent" => {
            r.sent_ts = Some(e.event_ts);
            r.rejected_recipients = meta
                .and_then(|m| m.get("rejected_recipients"))
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .map(|x| RejectedRecipientV1 {
                            address: x
                                .get("address")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .into(),
                            code: x
                                .get("code")
                                .and_then(Value::as_u64)
                                .and_then(|c| u16::try_from(c).ok())
                                .unwrap_or(0),
                            reason: x
                                .get("reason")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .into(),
                        })
                        .collect()
                });
        }
        "error" => {
            r.error_ts = Some(e.event_ts);
            r.error = Some(e.description.clone().unwrap_or_default());
        }
        "deferred" => {
            r.deferred_ts = Some(e.event_ts);
            r.deferred_reason = e.description.clone();
            r.retry_at = meta
                .and_then(|m| m.get("deferred_ts"))
                .and_then(Value::as_i64);
        }
        "bounce" => {
            r.bounce_ts = Some(e.event_ts);
            r.bounce_type = meta_str("bounce_type");
            r.bounce_code = meta_str("bounce_code");
            r.bounce_reason = e.description.clone();
        }
        _ => {}
    }
    r
}

/// Splits the sent events into acknowledged and refused event ids: every entry is acknowledged
/// except those whose message id the client listed in `error`.
pub fn settle(sent: &[PendingReport], refused_ids: &HashSet<String>) -> (Vec<i64>, Vec<i64>) {
    let (acked, refused): (Vec<&PendingReport>, Vec<&PendingReport>) = sent
        .iter()
        .partition(|e| !refused_ids.contains(&e.message_id));
    (
        acked.iter().map(|e| e.event_id).collect(),
        refused.iter().map(|e| e.event_id).collect(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ev(id: i64, msg: &str, kind: &str, meta: Option<Value>) -> PendingReport {
        PendingReport {
            event_id: id,
            message_id: msg.into(),
            event_type: kind.into(),
            event_ts: 100 + id,
            description: Some("why".into()),
            metadata: meta,
        }
    }

    #[test]
    fn entries_carry_the_fields_of_their_type() {
        let d = entry(&ev(1, "m", "deferred", Some(json!({"deferred_ts": 160}))));
        assert_eq!(
            (d.deferred_ts, d.retry_at, d.deferred_reason.as_deref()),
            (Some(101), Some(160), Some("why"))
        );
        let e = entry(&ev(2, "m", "error", None));
        assert_eq!(
            (e.error_ts, e.error.as_deref(), e.kind()),
            (Some(102), Some("why"), "error")
        );
        let s = entry(&ev(
            3,
            "m",
            "sent",
            Some(json!({"rejected_recipients": [{"address": "x@y", "code": 550, "reason": "no"}]})),
        ));
        assert_eq!(s.rejected_recipients.unwrap()[0].code, 550);
    }

    #[test]
    fn refused_ids_stay_unacknowledged() {
        let sent = [
            ev(1, "a", "sent", None),
            ev(2, "b", "sent", None),
            ev(3, "b", "deferred", None),
        ];
        let refused: HashSet<String> = ["b".to_string()].into();
        assert_eq!(settle(&sent, &refused), (vec![1], vec![2, 3]));
    }
}
