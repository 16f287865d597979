//! Tenant isolation, route by route (issue 10, PROTOCOL.md §3.1): every route of `router()` is
//! called with no token, a wrong token, another tenant's token, the tenant's own token and the
//! admin token, and each answer's status is checked against the route's class (public, any
//! token, tenant-scoped, admin-only). The table is checked against the router's source, so a new
//! route without a row fails this test. Authentication comes before input: every route that
//! needs a token answers a caller without a valid one 401 whatever its body and query hold (a
//! malformed body is never parsed for them), while the admin gets the body's 422. Then
//! data-level checks: a tenant token sees and changes only its own accounts and messages.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Api, Db, database, start};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    Public,
    Token,
    Tenant,
    Admin,
}

/// One call: the route pattern as written in `router()`, the method, the concrete path, a body.
struct Row {
    pattern: &'static str,
    method: Method,
    path: &'static str,
    body: Option<Value>,
    class: Class,
}

fn row(pattern: &'static str, method: Method, path: &'static str, class: Class) -> Row {
    Row {
        pattern,
        method,
        path,
        body: None,
        class,
    }
}

fn with(mut r: Row, body: Value) -> Row {
    r.body = Some(body);
    r
}

/// A message deferred to 2100: the dispatcher never claims it, so re-adding it is never refused
/// as `in progress` whatever the timing.
fn msg(id: &str) -> Value {
    json!({"id": id, "from": "s@x.io", "to": ["r@x.io"], "subject": "s", "deferred_ts": 4_102_444_800_i64})
}

/// Every route. Tenant-scoped rows act on `t1`; admin-only rows that destroy act on `t3`.
fn table() -> Vec<Row> {
    use Class::*;
    let (get, post, put, delete) = (Method::GET, Method::POST, Method::PUT, Method::DELETE);
    vec![
        row("/health", get.clone(), "/health", Public),
        row("/instance/health", get.clone(), "/instance/health", Public),
        row("/metrics", get.clone(), "/metrics", Public),
        row("/status", get.clone(), "/status", Token),
        row("/instance/status", get.clone(), "/instance/status", Token),
        with(
            row(
                "/commands/run-now",
                post.clone(),
                "/commands/run-now",
                Tenant,
            ),
            json!({"tenant_id": "t1"}),
        ),
        row(
            "/commands/suspend",
            post.clone(),
            "/commands/suspend?tenant_id=t1",
            Tenant,
        ),
        row(
            "/commands/activate",
            post.clone(),
            "/commands/activate?tenant_id=t1",
            Tenant,
        ),
        with(
            row(
                "/commands/add-messages",
                post.clone(),
                "/commands/add-messages",
                Tenant,
            ),
            json!({"tenant_id": "t1", "messages": [msg("m2")]}),
        ),
        with(
            row(
                "/commands/delete-messages",
                post.clone(),
                "/commands/delete-messages?tenant_id=t1",
                Tenant,
            ),
            json!({"ids": ["m2"]}),
        ),
        with(
            row(
                "/commands/cleanup-messages",
                post.clone(),
                "/commands/cleanup-messages?tenant_id=t1",
                Tenant,
            ),
            json!({}),
        ),
        with(
            row("/account", post.clone(), "/account", Tenant),
            json!({"id": "a1", "tenant_id": "t1", "host": "127.0.0.1", "port": 1}),
        ),
        row("/accounts", get.clone(), "/accounts?tenant_id=t1", Tenant),
        row(
            "/account/{account_id}",
            delete.clone(),
            "/account/a1?tenant_id=t1",
            Tenant,
        ),
        row("/messages", get.clone(), "/messages?tenant_id=t1", Tenant),
        with(
            row("/tenant", post.clone(), "/tenant", Admin),
            json!({"id": "t3"}),
        ),
        row("/tenants", get.clone(), "/tenants", Admin),
        row(
            "/tenants/sync-status",
            get.clone(),
            "/tenants/sync-status",
            Admin,
        ),
        row("/tenant/{id}", get.clone(), "/tenant/t1", Tenant),
        with(
            row("/tenant/{id}", put, "/tenant/t1", Tenant),
            json!({"name": "T one"}),
        ),
        row("/tenant/{id}", delete.clone(), "/tenant/t3", Admin),
        with(
            row(
                "/tenant/{id}/api-key",
                post.clone(),
                "/tenant/t3/api-key",
                Admin,
            ),
            json!({}),
        ),
        row("/tenant/{id}/api-key", delete, "/tenant/t3/api-key", Admin),
        with(
            row(
                "/instance/run_now",
                post.clone(),
                "/instance/run_now",
                Tenant,
            ),
            json!({"tenant_id": "t1"}),
        ),
        with(
            row(
                "/instance/suspend",
                post.clone(),
                "/instance/suspend",
                Tenant,
            ),
            json!({"tenant_id": "t1"}),
        ),
        with(
            row(
                "/instance/activate",
                post.clone(),
                "/instance/activate",
                Tenant,
            ),
            json!({"tenant_id": "t1"}),
        ),
        with(
            row(
                "/tenants/suspend_batch",
                post.clone(),
                "/tenants/suspend_batch",
                Tenant,
            ),
            json!({"tenant_id": "t1", "batch_code": "b"}),
        ),
        with(
            row(
                "/tenants/activate_batch",
                post.clone(),
                "/tenants/activate_batch",
                Tenant,
            ),
            json!({"tenant_id": "t1", "batch_code": "b"}),
        ),
        row(
            "/tenants/get_suspended_batches",
            get.clone(),
            "/tenants/get_suspended_batches?tenant_id=t1",
            Tenant,
        ),
        row(
            "/instance/get_sync_status",
            get.clone(),
            "/instance/get_sync_status",
            Admin,
        ),
        with(
            row("/tenants/add", post.clone(), "/tenants/add", Admin),
            json!({"id": "t3"}),
        ),
        with(
            row("/tenants/update", post.clone(), "/tenants/update", Tenant),
            json!({"tenant_id": "t1", "name": "T one"}),
        ),
        row(
            "/tenants/get",
            get.clone(),
            "/tenants/get?tenant_id=t1",
            Tenant,
        ),
        row("/tenants/list", get.clone(), "/tenants/list", Admin),
        with(
            row("/tenants/delete", post.clone(), "/tenants/delete", Admin),
            json!({"tenant_id": "t3"}),
        ),
        with(
            row(
                "/tenants/create_api_key",
                post.clone(),
                "/tenants/create_api_key",
                Admin,
            ),
            json!({"tenant_id": "t3"}),
        ),
        with(
            row(
                "/tenants/revoke_api_key",
                post.clone(),
                "/tenants/revoke_api_key",
                Admin,
            ),
            json!({"tenant_id": "t3"}),
        ),
        with(
            row("/accounts/add", post.clone(), "/accounts/add", Tenant),
            json!({"id": "a1", "tenant_id": "t1", "host": "127.0.0.1", "port": 1}),
        ),
        row(
            "/accounts/get",
            get.clone(),
            "/accounts/get?tenant_id=t1&account_id=a1",
            Tenant,
        ),
        row(
            "/accounts/list",
            get.clone(),
            "/accounts/list?tenant_id=t1",
            Tenant,
        ),
        with(
            row("/accounts/delete", post.clone(), "/accounts/delete", Tenant),
            json!({"tenant_id": "t1", "account_id": "a1"}),
        ),
        with(
            row(
                "/messages/add_batch",
                post.clone(),
                "/messages/add_batch",
                Tenant,
            ),
            json!({"tenant_id": "t1", "messages": [msg("m2")]}),
        ),
        with(
            row("/messages/add", post.clone(), "/messages/add", Tenant),
            {
                let mut m3 = msg("m3");
                m3["tenant_id"] = json!("t1");
                m3
            },
        ),
        row(
            "/messages/get",
            get.clone(),
            "/messages/get?tenant_id=t1&message_id=m1",
            Tenant,
        ),
        row(
            "/messages/list",
            get.clone(),
            "/messages/list?tenant_id=t1",
            Tenant,
        ),
        with(
            row(
                "/messages/delete_batch",
                post.clone(),
                "/messages/delete_batch",
                Tenant,
            ),
            json!({"tenant_id": "t1", "ids": ["m2"]}),
        ),
        row(
            "/messages/count_active",
            get.clone(),
            "/messages/count_active",
            Admin,
        ),
        row(
            "/messages/count_pending_for_tenant",
            get.clone(),
            "/messages/count_pending_for_tenant?tenant_id=t1",
            Tenant,
        ),
        row(
            "/messages/cleanup",
            get.clone(),
            "/messages/cleanup?tenant_id=t1",
            Tenant,
        ),
        row(
            "/messages/cleanup",
            post.clone(),
            "/messages/cleanup?tenant_id=t1",
            Tenant,
        ),
        with(
            row("/messages/delete", post.clone(), "/messages/delete", Tenant),
            json!({"tenant_id": "t1", "message_pk": PK_OF_MDEL}),
        ),
        row("/instance", get.clone(), "/instance", Admin),
        with(
            row("/instance", Method::PUT, "/instance", Admin),
            json!({"name": "mail-proxy"}),
        ),
        with(
            row("/instance/update", post.clone(), "/instance/update", Admin),
            json!({"name": "mail-proxy"}),
        ),
        row("/instance/get", get.clone(), "/instance/get", Admin),
        with(
            row(
                "/instance/set_bounce_config",
                post.clone(),
                "/instance/set_bounce_config",
                Admin,
            ),
            json!({"bounce_imap_folder": "INBOX"}),
        ),
        row(
            "/instance/get_bounce_config",
            get.clone(),
            "/instance/get_bounce_config",
            Admin,
        ),
        row(
            "/instance/reload-bounce",
            post.clone(),
            "/instance/reload-bounce",
            Admin,
        ),
        row(
            "/instance/reload_bounce",
            post.clone(),
            "/instance/reload_bounce",
            Admin,
        ),
        row(
            "/instance/upgrade-to-ee",
            post.clone(),
            "/instance/upgrade-to-ee",
            Admin,
        ),
        row(
            "/instance/upgrade_to_ee",
            post.clone(),
            "/instance/upgrade_to_ee",
            Admin,
        ),
        row("/command-log", get.clone(), "/command-log", Admin),
        row(
            "/command-log/export",
            get.clone(),
            "/command-log/export",
            Admin,
        ),
        row("/command_log/list", get.clone(), "/command_log/list", Admin),
        row(
            "/command_log/get",
            get.clone(),
            "/command_log/get?command_id=1",
            Admin,
        ),
        row(
            "/command_log/export",
            get.clone(),
            "/command_log/export",
            Admin,
        ),
        with(
            row(
                "/command_log/purge",
                post.clone(),
                "/command_log/purge",
                Admin,
            ),
            json!({"threshold_ts": 0}),
        ),
        with(
            row("/storages/add", post.clone(), "/storages/add", Tenant),
            json!({"tenant_id": "t1", "name": "s1", "protocol": "local", "config": {"base_path": "t1"}}),
        ),
        row(
            "/storages/get",
            get.clone(),
            "/storages/get?tenant_id=t1&name=s1",
            Tenant,
        ),
        row(
            "/storages/list",
            get.clone(),
            "/storages/list?tenant_id=t1",
            Tenant,
        ),
        with(
            row("/storages/delete", post.clone(), "/storages/delete", Tenant),
            json!({"tenant_id": "t1", "name": "s1"}),
        ),
        with(
            row(
                "/accounts/add_pec",
                post.clone(),
                "/accounts/add_pec",
                Tenant,
            ),
            json!({"id": "p1", "tenant_id": "t1", "host": "127.0.0.1", "port": 1}),
        ),
        row(
            "/accounts/list_pec",
            get.clone(),
            "/accounts/list_pec?tenant_id=t1",
            Tenant,
        ),
        row(
            "/accounts/get_pec_ids",
            get,
            "/accounts/get_pec_ids?tenant_id=t1",
            Tenant,
        ),
    ]
}

/// Stands for the primary key of message `mdel` (which [`restore`] puts back after each
/// delete) in a row's body; the walk puts the real key in.
const PK_OF_MDEL: &str = "<pk of mdel>";

/// A row's body with [`PK_OF_MDEL`] replaced by the key `mdel` has now.
async fn resolved(admin: &Api, body: Option<Value>) -> Option<Value> {
    let mut body = body?;
    if body.get("message_pk") == Some(&json!(PK_OF_MDEL)) {
        let (_, rec) = admin
            .get("/messages/get?tenant_id=t1&message_id=mdel")
            .await;
        body["message_pk"] = rec["pk"].clone();
    }
    Some(body)
}

/// `(pattern, METHOD)` of every route in `proxy/src/http.rs`, read from its source.
fn routes_in_source() -> Vec<(String, String)> {
    let src = include_str!("../src/http.rs");
    let body = src.split(".fallback(").next().unwrap();
    let mut out = Vec::new();
    for chunk in body.split(".route(").skip(1) {
        let pattern = chunk.split('"').nth(1).unwrap().to_string();
        let bytes = chunk.as_bytes();
        for m in ["get", "post", "put", "delete"] {
            let needle = format!("{m}(");
            for (i, _) in chunk.match_indices(&needle) {
                let before = if i == 0 { b' ' } else { bytes[i - 1] };
                if !(before.is_ascii_alphanumeric() || before == b'_') {
                    out.push((pattern.clone(), m.to_ascii_uppercase()));
                }
            }
        }
    }
    out
}

/// The status expected for a class and a caller (0 no token, 1 wrong, 2 other tenant, 3 own
/// tenant, 4 admin).
fn expected(class: Class, caller: usize) -> StatusCode {
    use StatusCode as S;
    match (class, caller) {
        (Class::Public, _) | (_, 4) => S::OK,
        (_, 0 | 1) => S::UNAUTHORIZED,
        (Class::Token, _) => S::OK,
        (Class::Tenant, 2) => S::UNAUTHORIZED,
        (Class::Tenant, _) => S::OK,
        (Class::Admin, _) => S::FORBIDDEN,
    }
}

async fn key_of(admin: &Api, id: &str) -> String {
    let (s, b) = admin.post("/tenant", json!({"id": id})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["api_key"].as_str().unwrap().to_string()
}

/// Puts back what a successful destructive call removed (no row deletes `m1`).
async fn restore(admin: &Api) {
    for (path, body) in [
        ("/tenant", json!({"id": "t3"})),
        (
            "/account",
            json!({"id": "a1", "tenant_id": "t1", "host": "127.0.0.1", "port": 1}),
        ),
        (
            "/account",
            json!({"id": "a2", "tenant_id": "t2", "host": "127.0.0.1", "port": 1}),
        ),
        (
            "/commands/add-messages",
            json!({"tenant_id": "t1", "messages": [msg("mdel")]}),
        ),
    ] {
        let (s, b) = admin.post(path, body).await;
        assert_eq!(s, StatusCode::OK, "{path}: {b}");
    }
}

async fn every_route_enforces_its_class(db: Db) {
    let tdb = database(db).await;
    let base = tempfile::tempdir().unwrap();
    let mut c = common::config(&tdb.url);
    c.scheduler_active = false;
    c.attachment_base_dir = Some(base.path().to_path_buf());
    let server = start(c).await;
    let admin = Api::new(&server);
    let own_key = key_of(&admin, "t1").await;
    let other_key = key_of(&admin, "t2").await;
    // Accounts point at a closed port: messages are retried, never delivered anywhere.
    restore(&admin).await;
    let m1 = json!({"tenant_id": "t1", "messages": [msg("m1")]});
    assert_eq!(
        admin.post("/commands/add-messages", m1).await.0,
        StatusCode::OK
    );
    let callers = [
        admin.with_token(None),
        admin.with_token(Some("wrong-token")),
        admin.with_token(Some(&other_key)),
        admin.with_token(Some(&own_key)),
        admin.clone(),
    ];
    let names = [
        "no token",
        "wrong token",
        "other tenant",
        "own tenant",
        "admin",
    ];
    let table = table();
    let mut missing = Vec::new();
    for (pattern, method) in routes_in_source() {
        if !table
            .iter()
            .any(|r| r.pattern == pattern && r.method.as_str() == method)
        {
            missing.push(format!("{method} {pattern}"));
        }
    }
    assert!(missing.is_empty(), "routes without a row: {missing:?}");
    let mut checked = 0;
    for r in &table {
        for (i, caller) in callers.iter().enumerate() {
            let request = resolved(&admin, r.body.clone()).await;
            let (status, body) = caller.call(r.method.clone(), r.path, request).await;
            assert_eq!(
                status,
                expected(r.class, i),
                "{} {} with {}: {body}",
                r.method,
                r.path,
                names[i]
            );
            if status.is_success() {
                restore(&admin).await;
            }
            checked += 1;
        }
    }
    println!(
        "route walk: {} routes x 5 callers = {checked} calls",
        table.len()
    );
    assert_eq!(admin.get("/no/such/route").await.0, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// A body that is not JSON.
const MALFORMED: &str = "{\"not json";

/// Wrong values for every typed query parameter the routes read.
const BAD_QUERY: &str =
    "active_only=maybe&include_history=maybe&limit=x&offset=x&older_than_seconds=x";

/// One request with a raw JSON body, as `caller` (its token, if any).
async fn raw_call(caller: &Api, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", caller.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = &caller.token {
        req = req.header("X-API-Token", t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn authentication_comes_before_the_body(db: Db) {
    let tdb = database(db).await;
    let mut c = common::config(&tdb.url);
    c.scheduler_active = false;
    let server = start(c).await;
    let admin = Api::new(&server);
    let tenant = admin.with_token(Some(&key_of(&admin, "t1").await));
    let anonymous = [
        admin.with_token(None),
        admin.with_token(Some("wrong-token")),
    ];
    let mut checked = 0;
    for r in table().iter().filter(|r| r.class != Class::Public) {
        let sep = if r.path.contains('?') { '&' } else { '?' };
        let hostile = format!("{}{sep}{BAD_QUERY}", r.path);
        for (caller, name) in anonymous.iter().zip(["no token", "wrong token"]) {
            let (status, body) = raw_call(caller, r.method.clone(), &hostile, MALFORMED).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} {hostile} with {name}: {body}",
                r.method
            );
            assert!(body["detail"].is_string(), "{} {hostile}: {body}", r.method);
            checked += 1;
        }
        if r.class == Class::Admin {
            let (status, body) = raw_call(&tenant, r.method.clone(), r.path, MALFORMED).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{} {}: {body}",
                r.method,
                r.path
            );
            checked += 1;
        }
        // Every route that reads a body has a row with one (an empty body would fail the route
        // walk above); the admin is told what is wrong with it.
        if r.body.is_some() {
            let (status, body) = raw_call(&admin, r.method.clone(), r.path, MALFORMED).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{} {} as admin: {body}",
                r.method,
                r.path
            );
            assert_eq!(body["detail"][0]["type"], "json_invalid", "{body}");
            checked += 1;
        }
    }
    println!("authentication before input: {checked} calls");
    server.stop().await;
}

async fn tenant_tokens_see_and_change_only_their_own_data(db: Db) {
    let tdb = database(db).await;
    let mut c = common::config(&tdb.url);
    c.scheduler_active = false;
    let server = start(c).await;
    let admin = Api::new(&server);
    let own = admin.with_token(Some(&key_of(&admin, "t1").await));
    key_of(&admin, "t2").await;
    restore(&admin).await;
    let (s, _) = admin
        .post(
            "/commands/add-messages",
            json!({"tenant_id": "t2", "messages": [msg("secret-of-t2")]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Lists default to the token's tenant and hold only its rows.
    let (_, accounts) = own.get("/accounts/list").await;
    let ids: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["tenant_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t1"]);
    let (_, list) = own.get("/messages/list").await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|m| m["tenant_id"] == "t1"),
        "{list}"
    );
    assert!(!list.to_string().contains("secret-of-t2"));
    // Another tenant's message cannot be read or deleted by id.
    let (s, _) = own.get("/messages/get?message_id=secret-of-t2").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = own
        .post("/messages/delete_batch", json!({"ids": ["secret-of-t2"]}))
        .await;
    assert_eq!((s, b["removed"].clone()), (StatusCode::OK, json!(0)), "{b}");
    let (_, still) = admin
        .get("/messages/get?tenant_id=t2&message_id=secret-of-t2")
        .await;
    assert_eq!(still["id"], "secret-of-t2", "t2's message survives");
    // Nor can it change another tenant's accounts or settings through a body's tenant_id.
    let (s, _) = own
        .post(
            "/accounts/add",
            json!({"id": "a2", "tenant_id": "t2", "host": "evil.example", "port": 25}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, a2) = admin.get("/accounts/get?tenant_id=t2&account_id=a2").await;
    assert_eq!(a2["host"], "127.0.0.1");
    let (s, _) = own
        .post(
            "/tenants/update",
            json!({"tenant_id": "t2", "active": false}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        admin.get("/tenants/get?tenant_id=t2").await.1["active"],
        true
    );
    server.stop().await;
}

on_both_stores!(
    every_route_enforces_its_class,
    authentication_comes_before_the_body,
    tenant_tokens_see_and_change_only_their_own_data
);
