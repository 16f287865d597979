//! The intake decision on plain values: every reason, where refusals are filed, what is counted.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;

const NOW: i64 = 1_000;

fn account(id: &str, sender: Option<&str>) -> AccountRef {
    AccountRef {
        id: id.into(),
        pk: format!("pk-{id}"),
        sender_email: sender.map(str::to_string),
    }
}

/// Tenant `t1` with accounts `a1` (sender set, the default) and `a2` (no sender); tenant `t2`
/// without accounts.
fn known() -> HashMap<String, TenantAccounts> {
    HashMap::from([
        (
            "t1".to_string(),
            TenantAccounts {
                default_account_id: Some("a1".into()),
                accounts: vec![account("a2", None), account("a1", Some("s@t1.test"))],
            },
        ),
        ("t2".to_string(), TenantAccounts::default()),
    ])
}

fn msg(id: &str, extra: Value) -> Value {
    let mut m = json!({"id": id, "to": ["r@x.test"], "subject": "s"});
    if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
        m.extend(extra.clone());
    }
    m
}

fn scope<'a>(default: Option<&'a str>, forced: Option<&'a str>) -> Scope<'a> {
    Scope {
        default_tenant: default,
        forced_tenant: forced,
        default_priority: 2,
        limits: submit::Limits::default(),
    }
}

fn run(raws: &[Value], scope: &Scope<'_>, existing: &[(&str, &str, Existing)]) -> Plan {
    let placed = place(raws, scope);
    let existing = existing
        .iter()
        .map(|(t, i, e)| ((t.to_string(), i.to_string()), *e))
        .collect();
    decide(placed, &known(), &existing, NOW)
}

fn reasons(plan: &Plan) -> Vec<(Option<&str>, &str)> {
    plan.outcome
        .rejected
        .iter()
        .map(|r| (r.id.as_deref(), r.reason.as_str()))
        .collect()
}

#[test]
fn accounts_resolve_named_then_default_and_the_sender_fills_from() {
    let plan = run(
        &[
            msg("default", json!({})),
            msg("named", json!({"account_id": "a2", "from": "me@t1.test"})),
        ],
        &scope(Some("t1"), None),
        &[],
    );
    assert_eq!(plan.outcome.queued, 2);
    assert!(plan.outcome.ok());
    let [first, second] = &plan.inserts[..] else {
        panic!("two inserts: {plan:?}")
    };
    assert_eq!(
        (first.account.id.as_str(), &first.payload["from"]),
        ("a1", &json!("s@t1.test"))
    );
    assert_eq!(first.payload["tenant_id"], "t1");
    assert_eq!(second.account.pk, "pk-a2");
    assert_eq!(second.payload["from"], "me@t1.test");
    assert_eq!(plan.outcome.queued_by_tenant["t1"], 2);
}

#[test]
fn each_resolution_failure_has_its_reason_and_is_filed_under_its_tenant() {
    let plan = run(
        &[
            msg("no-account", json!({"account_id": "zz"})),
            msg("no-from", json!({"account_id": "a2"})),
            msg("t2-none", json!({"tenant_id": "t2"})),
            msg("ghost", json!({"tenant_id": "nobody"})),
            msg("", json!({})),
        ],
        &scope(Some("t1"), None),
        &[],
    );
    assert_eq!(
        reasons(&plan),
        [
            (Some("no-account"), "account not found for tenant"),
            (Some("no-from"), "missing from"),
            (Some("t2-none"), "missing account_id"),
            (Some("ghost"), "tenant not found"),
            (None, "missing id"),
        ]
    );
    assert!(!plan.outcome.ok());
    let filed: Vec<(&str, &str)> = plan
        .refused_rows
        .iter()
        .map(|r| (r.tenant_id.as_str(), r.id.as_str()))
        .collect();
    assert_eq!(
        filed,
        [("t1", "no-account"), ("t1", "no-from"), ("t2", "t2-none")],
        "a made-up tenant gets no row, nor does a message without an id"
    );
    assert_eq!(plan.outcome.rejected_by_tenant.get("nobody"), None);
    // Counted under t1: the two filed ones and the one without an id (no row, but a refusal).
    assert_eq!(plan.outcome.rejected_by_tenant["t1"], 3);
}

#[test]
fn a_tenant_caller_naming_another_tenant_is_a_mismatch_filed_under_its_own() {
    let plan = run(
        &[
            msg("x", json!({"tenant_id": "t2"})),
            // Also malformed: the mismatch still wins.
            json!({"id": "y", "tenant_id": "t2"}),
            msg("own", json!({})),
        ],
        &scope(Some("t1"), Some("t1")),
        &[],
    );
    assert_eq!(
        reasons(&plan),
        [
            (Some("x"), "tenant mismatch"),
            (Some("y"), "tenant mismatch")
        ]
    );
    assert!(plan.refused_rows.iter().all(|r| r.tenant_id == "t1"));
    assert_eq!(plan.refused_rows.len(), 2);
    assert_eq!(plan.outcome.queued, 1);
}

#[test]
fn no_tenant_anywhere_is_missing_tenant_id_and_filed_nowhere() {
    let plan = run(&[msg("m", json!({}))], &scope(None, None), &[]);
    assert_eq!(reasons(&plan), [(Some("m"), "missing tenant_id")]);
    assert!(plan.refused_rows.is_empty());
}

#[test]
fn existing_rows_decide_already_sent_in_progress_and_replacement() {
    let sent = Existing {
        smtp_ts: Some(5),
        claimed_until: None,
    };
    let held = Existing {
        smtp_ts: None,
        claimed_until: Some(NOW + 10),
    };
    let lapsed = Existing {
        smtp_ts: None,
        claimed_until: Some(NOW - 1),
    };
    let plan = run(
        &[
            msg("sent", json!({})),
            msg("held", json!({})),
            msg("lapsed", json!({})),
        ],
        &scope(Some("t1"), None),
        &[
            ("t1", "sent", sent),
            ("t1", "held", held),
            ("t1", "lapsed", lapsed),
        ],
    );
    assert_eq!(
        reasons(&plan),
        [
            (Some("sent"), "already sent"),
            (Some("held"), "in progress")
        ]
    );
    assert!(
        plan.refused_rows.is_empty(),
        "existing rows are not refiled"
    );
    assert_eq!(plan.inserts.len(), 1);
    assert_eq!(plan.inserts[0].id, "lapsed");
    assert_eq!(plan.outcome.rejected_by_tenant["t1"], 2);
}

#[test]
fn a_batch_of_only_already_sent_messages_is_still_ok() {
    let sent = Existing {
        smtp_ts: Some(5),
        claimed_until: None,
    };
    let plan = run(
        &[msg("a", json!({}))],
        &scope(Some("t1"), None),
        &[("t1", "a", sent)],
    );
    assert_eq!(plan.outcome.queued, 0);
    assert!(plan.outcome.ok());
}

#[test]
fn a_second_copy_of_an_id_replaces_the_first() {
    let plan = run(
        &[
            msg("a", json!({"subject": "first"})),
            msg("a", json!({"subject": "second"})),
        ],
        &scope(Some("t1"), None),
        &[],
    );
    assert_eq!(plan.inserts.len(), 1);
    assert_eq!(plan.inserts[0].payload["subject"], "second");
    assert_eq!(plan.outcome.queued, 2, "both copies are answered as queued");
}

#[test]
fn lookups_cover_exactly_the_placed_tenants_and_keys() {
    let raws = [
        msg("a", json!({})),
        msg("b", json!({"tenant_id": "nobody"})),
        json!({"id": "c", "tenant_id": "t2"}),
    ];
    let placed = place(&raws, &scope(Some("t1"), None));
    let mut tenants: Vec<&str> = tenants(&placed).into_iter().collect();
    tenants.sort_unstable();
    assert_eq!(tenants, ["nobody", "t1", "t2"]);
    assert_eq!(keys(&placed, &known()), [("t1", "a"), ("t2", "c")]);
}
