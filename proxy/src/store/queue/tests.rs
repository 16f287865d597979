//! The claim honours a suspension or deactivation that lands after the blocked list was read,
//! on SQLite and on PostgreSQL (a fresh database of the test cluster, `GMP_TEST_PG_URL`); and the
//! planner statistics of the queue's tables follow its growth (`store::planner`), which needs the
//! same seeded stores.

use serde_json::{Map, Value, json};

use super::{Blocked, Store};
use crate::crypto::Cipher;
use crate::intake::Scope;
use crate::model::submit::Limits;
use crate::store::DbLocation;
use mailproxy_proto::patch::{AccountPatchV1, Field, TenantPatchV1};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("object")
}

/// Intake of messages for tenant `t1`, priority 2.
fn intake_t1() -> Scope<'static> {
    Scope {
        default_tenant: Some("t1"),
        forced_tenant: None,
        default_priority: 2,
        limits: Limits::default(),
    }
}

/// Adds a tenant with one SMTP account.
async fn tenant_with_account(store: &Store, tenant: &str, account: &str) {
    store
        .upsert_tenant(tenant, TenantPatchV1::default(), false)
        .await
        .expect("db")
        .expect("tenant");
    store
        .upsert_account(
            tenant,
            account,
            AccountPatchV1::from_json(&obj(json!({"host": "127.0.0.1", "port": 1})))
                .expect("valid"),
        )
        .await
        .expect("db")
        .expect("account");
}

/// A store with tenant `t1`, account `a1` and one message per batch code (`None` = no batch).
async fn seeded(location: &DbLocation) -> Store {
    let store = Store::open(location, 2, Cipher::random())
        .await
        .expect("store opens");
    tenant_with_account(&store, "t1", "a1").await;
    let messages: Vec<Value> = [None, Some("b_1"), Some("B_1"), Some("bx1")]
        .iter()
        .enumerate()
        .map(|(i, batch)| {
            json!({"id": format!("m{i}"), "tenant_id": "t1", "from": "s@x.io",
                   "to": ["r@x.io"], "subject": "s", "batch_code": batch})
        })
        .collect();
    let intake = intake_t1();
    let out = store.enqueue(&messages, intake).await.expect("enqueue");
    assert_eq!(out.queued, 4, "{out:?}");
    store
}

/// Ids claimed with a stale (empty) blocked list.
async fn claim_stale(store: &Store) -> Vec<String> {
    let now = chrono_now();
    let mut ids: Vec<String> = store
        .claim_with(&Blocked::default(), "r1", 100, 100, now, 60)
        .await
        .expect("claim")
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort();
    ids
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

async fn suspension_after_the_blocked_read_is_honoured(location: DbLocation) {
    // Whole tenant suspended: nothing is claimed.
    let store = seeded(&location).await;
    store.set_suspended("t1", Some("*")).await.expect("suspend");
    assert_eq!(claim_stale(&store).await, Vec::<String>::new());
    // One batch suspended: only its message stays; batch codes compare exactly (`_` is no
    // wildcard, case counts).
    store
        .set_suspended("t1", Some("b_1"))
        .await
        .expect("suspend");
    assert_eq!(claim_stale(&store).await, ["m0", "m2", "m3"]);
}

async fn deactivation_after_the_blocked_read_is_honoured(location: DbLocation) {
    let store = seeded(&location).await;
    store
        .upsert_tenant(
            "t1",
            TenantPatchV1 {
                active: Field::Set(false),
                ..TenantPatchV1::default()
            },
            true,
        )
        .await
        .expect("db")
        .expect("tenant");
    assert_eq!(claim_stale(&store).await, Vec::<String>::new());
}

/// A fresh database on the test cluster.
async fn postgres() -> DbLocation {
    use sqlx::Executor;
    let admin = std::env::var("GMP_TEST_PG_URL").expect(
        "GMP_TEST_PG_URL is not set: run ./scripts/test.sh, which starts a PostgreSQL test cluster",
    );
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&admin)
        .await
        .expect("admin connects");
    let name = format!("queue_{}", uuid::Uuid::new_v4().simple());
    pool.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create database");
    let (base, _) = admin.rsplit_once('/').expect("URL with a database");
    DbLocation::parse(&format!("{base}/{name}")).expect("location")
}

/// Replica r1 claims, its lease expires, r2 takes the messages over and records `sent`; r1's
/// late `deferred` must not overwrite it (nor add an event), and r2's outcomes clear the claim.
async fn a_late_outcome_does_not_overwrite_the_new_holder(location: DbLocation) {
    use super::{Outcome, OutcomeKind};
    let store = seeded(&location).await;
    let now = chrono_now();
    let first = store
        .claim_with(&Blocked::default(), "r1", 100, 100, now - 100, 10)
        .await
        .expect("claim");
    assert_eq!(first.len(), 4);
    let second = store
        .claim_with(&Blocked::default(), "r2", 100, 100, now, 60)
        .await
        .expect("claim after the lease expired");
    assert_eq!(second.len(), 4);
    let outcome = |pk: &str, kind: OutcomeKind| Outcome {
        pk: pk.into(),
        tenant_id: "t1".into(),
        ts: now,
        kind,
    };
    let sent: Vec<Outcome> = second
        .iter()
        .map(|c| outcome(&c.pk, OutcomeKind::Sent { metadata: None }))
        .collect();
    assert!(
        store
            .record_outcomes("r2", &sent)
            .await
            .expect("write")
            .is_empty()
    );
    let late: Vec<Outcome> = first
        .iter()
        .map(|c| {
            outcome(
                &c.pk,
                OutcomeKind::Deferred {
                    until: now + 60,
                    reason: "late".into(),
                    retry_count: 1,
                    metadata: json!({}),
                },
            )
        })
        .collect();
    let stale = store.record_outcomes("r1", &late).await.expect("write");
    assert_eq!(stale.len(), 4, "every late outcome discarded");
    let row: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM messages WHERE smtp_ts IS NOT NULL AND claimed_by IS NULL), \
                (SELECT count(*) FROM message_events WHERE event_type = 'deferred')",
    )
    .fetch_one(store.pool())
    .await
    .expect("count");
    assert_eq!(row, (4, 0), "r2's sent stands, no deferral recorded");
}

#[tokio::test]
async fn sqlite_a_late_outcome_does_not_overwrite_the_new_holder() {
    a_late_outcome_does_not_overwrite_the_new_holder(DbLocation::SqliteMemory).await;
}

#[tokio::test]
async fn postgres_a_late_outcome_does_not_overwrite_the_new_holder() {
    a_late_outcome_does_not_overwrite_the_new_holder(postgres().await).await;
}

#[tokio::test]
async fn sqlite_suspension_after_the_blocked_read_is_honoured() {
    suspension_after_the_blocked_read_is_honoured(DbLocation::SqliteMemory).await;
}

#[tokio::test]
async fn sqlite_deactivation_after_the_blocked_read_is_honoured() {
    deactivation_after_the_blocked_read_is_honoured(DbLocation::SqliteMemory).await;
}

#[tokio::test]
async fn postgres_suspension_after_the_blocked_read_is_honoured() {
    suspension_after_the_blocked_read_is_honoured(postgres().await).await;
}

#[tokio::test]
async fn postgres_deactivation_after_the_blocked_read_is_honoured() {
    deactivation_after_the_blocked_read_is_honoured(postgres().await).await;
}

/// PostgreSQL: once messages and events change enough, the store analyses them (they start with
/// no statistics) and then leaves them alone until they change again.
#[tokio::test]
async fn postgres_planner_statistics_follow_a_growing_queue() {
    let location = postgres().await;
    let store = seeded(&location).await;
    let analysed = || async {
        let rows = sqlx::query(
            "SELECT relname::text AS name FROM pg_stat_user_tables \
             WHERE relname::text IN ('messages', 'message_events') AND last_analyze IS NOT NULL \
             ORDER BY relname",
        )
        .fetch_all(&store.pool)
        .await
        .expect("stats");
        rows.iter()
            .map(|r| sqlx::Row::try_get::<String, _>(r, "name").expect("name"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        store.refresh_planner_stats().await.expect("refresh"),
        Vec::<String>::new()
    );
    let messages: Vec<Value> = (0..1500)
        .map(|i| json!({"id": format!("bulk{i}"), "from": "s@x.io", "to": ["r@x.io"], "subject": "s"}))
        .collect();
    let intake = intake_t1();
    for chunk in messages.chunks(500) {
        store.enqueue(chunk, intake).await.expect("enqueue");
    }
    // Table statistics reach the view within about a second of the commit.
    let mut refreshed = Vec::new();
    for _ in 0..50 {
        refreshed = store.refresh_planner_stats().await.expect("refresh");
        if !refreshed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(refreshed, ["messages"]);
    assert_eq!(analysed().await, ["messages"]);
    assert_eq!(
        store.refresh_planner_stats().await.expect("refresh"),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn sqlite_needs_no_planner_statistics() {
    let store = seeded(&DbLocation::SqliteMemory).await;
    assert!(
        store
            .refresh_planner_stats()
            .await
            .expect("refresh")
            .is_empty()
    );
}

/// An intake that names rows of two tenants, more than one lookup's worth (500 ids) of one of
/// them: each existing row is found under its own tenant (`already sent` for a sent one, a
/// replacement for an unsent one, never a second row), and the same ids under another tenant
/// are other messages.
async fn intake_finds_the_existing_rows_of_each_tenant(location: DbLocation) {
    use super::{Outcome, OutcomeKind};
    let store = seeded(&location).await;
    tenant_with_account(&store, "t2", "a2").await;
    // t1's m0 is sent; the other three stay queued, unclaimed.
    let now = chrono_now();
    let claimed = store
        .claim_with(&Blocked::default(), "r1", 100, 100, now, 60)
        .await
        .expect("claim");
    let m0 = claimed.iter().find(|c| c.id == "m0").expect("m0 claimed");
    let sent = Outcome {
        pk: m0.pk.clone(),
        tenant_id: "t1".into(),
        ts: now,
        kind: OutcomeKind::Sent { metadata: None },
    };
    assert!(
        store
            .record_outcomes("r1", &[sent])
            .await
            .expect("write")
            .is_empty()
    );
    let others: Vec<String> = claimed
        .iter()
        .filter(|c| c.id != "m0")
        .map(|c| c.pk.clone())
        .collect();
    store.release_claims("r1", &others).await.expect("release");

    let admin = Scope {
        default_tenant: None,
        ..intake_t1()
    };
    let message = |tenant: &str, id: String| json!({"id": id, "tenant_id": tenant, "from": "s@x.io", "to": ["r@x.io"], "subject": "s"});
    // t2 gets ids m0..m599 (t1's ids among them), then t1's m0 and m1 again.
    let mut batch: Vec<Value> = (0..600).map(|i| message("t2", format!("m{i}"))).collect();
    batch.push(message("t1", "m0".into()));
    batch.push(message("t1", "m1".into()));
    let first = store.enqueue(&batch, admin).await.expect("enqueue");
    assert_eq!(first.queued, 601, "{:?}", first.rejected);
    assert_eq!(first.rejected.len(), 1);
    assert_eq!(first.rejected[0].reason, crate::intake::Reason::AlreadySent);
    // The same batch again: every t2 row and t1's m1 are replaced, none added.
    let again = store.enqueue(&batch, admin).await.expect("enqueue");
    assert_eq!(again.queued, 601);
    let pending = store.count_pending_by_tenant().await.expect("count");
    assert_eq!(pending.get("t1"), Some(&3), "m1, m2, m3 queued once");
    assert_eq!(pending.get("t2"), Some(&600), "each t2 id queued once");
}

#[tokio::test]
async fn sqlite_intake_finds_the_existing_rows_of_each_tenant() {
    intake_finds_the_existing_rows_of_each_tenant(DbLocation::SqliteMemory).await;
}

#[tokio::test]
async fn postgres_intake_finds_the_existing_rows_of_each_tenant() {
    intake_finds_the_existing_rows_of_each_tenant(postgres().await).await;
}

/// PostgreSQL: the queue's write settings are in place after the migrations: room on each page
/// of `messages` for the claim's update (fillfactor 50) and lz4 for the large text written with
/// every message (the test cluster's PostgreSQL has lz4, so the migration must not skip it).
#[tokio::test]
async fn postgres_queue_tables_carry_their_write_settings() {
    let location = postgres().await;
    let store = seeded(&location).await;
    let text = |sql: &'static str| {
        let pool = store.pool.clone();
        async move {
            let row = sqlx::query(sql).fetch_one(&pool).await.expect("catalog");
            sqlx::Row::try_get::<String, _>(&row, "v").expect("value")
        }
    };
    let options = text(
        "SELECT COALESCE(array_to_string(reloptions, ','), '') AS v FROM pg_class \
         WHERE relname = 'messages' AND relkind = 'r'",
    )
    .await;
    assert_eq!(options, "fillfactor=50");
    let compression = text(
        "SELECT string_agg(c.relname || '.' || a.attname || '=' || a.attcompression::text, ',' \
           ORDER BY c.relname, a.attname) AS v \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         WHERE (c.relname, a.attname) IN (('messages', 'payload'), ('command_log', 'payload'), \
           ('command_log', 'response_body'))",
    )
    .await;
    assert_eq!(
        compression,
        "command_log.payload=l,command_log.response_body=l,messages.payload=l"
    );
}
