//! Bad input of every kind gets its 4xx with a JSON reason, and leaves the queue intact; tokens
//! are enforced per route class.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Api, Db, database, sink::Sink, start, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn pending(api: &Api) -> i64 {
    api.get("/messages/count_active").await.1.as_i64().unwrap()
}

async fn bad_inputs_get_4xx_and_lose_nothing(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    // Suspend delivery so the queue can be inspected: the tenant is suspended after setup.
    let server = start(common::config(&tdb.url)).await;
    let api = Api::new(&server);
    api.setup_tenant("t1", sink.port).await;
    let (s, _) = api.post("/commands/suspend?tenant_id=t1", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let ok = json!({"tenant_id": "t1", "messages": [{"id": "keep-1", "to": ["a@b.io"], "subject": "s"}]});
    assert_eq!(
        api.post("/commands/add-messages", ok.clone()).await.0,
        StatusCode::OK
    );
    assert_eq!(pending(&api).await, 1);

    // Malformed JSON.
    let (s, b) = api.raw_post("/commands/add-messages", "{not json").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["detail"][0]["type"], "json_invalid");
    // Missing field and wrong type.
    let (s, b) = api
        .post("/commands/add-messages", json!({"tenant_id": "t1"}))
        .await;
    assert_eq!(
        (s, b["detail"][0]["loc"].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "messages"])
        )
    );
    let (s, _) = api
        .post("/commands/add-messages", json!({"messages": "x"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = api.post("/commands/add-messages", json!([1, 2])).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Unknown tenant: every message rejected, 400 with reasons.
    let (s, b) = api.post("/commands/add-messages", json!({"tenant_id": "nope", "messages": [{"id": "x", "to": ["a@b.io"], "subject": "s"}]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["detail"]["rejected"][0]["reason"], "tenant not found");
    // Unknown account, invalid addresses, missing subject: exact reasons.
    let (s, b) = api
        .post(
            "/commands/add-messages",
            json!({"tenant_id": "t1", "messages": [
                {"id": "r1", "account_id": "ghost", "to": ["a@b.io"], "subject": "s"},
                {"id": "r2", "to": ["invalid-no-at"], "subject": "s"},
                {"id": "r3", "to": ["a@b.io"]},
                {"id": "ok-2", "to": ["a@b.io"], "subject": "s"}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["queued"], 1);
    let reasons: Vec<&str> = b["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "account not found for tenant",
            "invalid to address",
            "missing subject"
        ]
    );
    // Over 1000 messages in one request.
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"id": format!("m{i}"), "to": ["a@b.io"], "subject": "s"}))
        .collect();
    let (s, b) = api
        .post(
            "/commands/add-messages",
            json!({"tenant_id": "t1", "messages": many}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b["detail"]["error"],
        "Cannot enqueue more than 1000 messages at once"
    );
    // Unknown routes and tenants.
    assert_eq!(
        api.get("/tenant/ghost").await,
        (
            StatusCode::NOT_FOUND,
            json!({"detail": "Tenant 'ghost' not found"})
        )
    );
    assert_eq!(api.get("/no/such/route").await.0, StatusCode::NOT_FOUND);
    let (s, b) = api
        .call(reqwest::Method::DELETE, "/account/ghost?tenant_id=t1", None)
        .await;
    assert_eq!(
        (s, b["detail"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("account not found or not owned by tenant")
        )
    );
    // Account without host/port; tenant with a bad URL.
    let (s, _) = api
        .post("/account", json!({"id": "a2", "tenant_id": "t1"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, b) = api
        .post("/tenant", json!({"id": "t2", "client_base_url": "ftp://x"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    // A duplicate id of a queued message replaces it; the queue holds keep-1, ok-2 and the stored
    // rejections are terminal.
    assert_eq!(
        api.post("/commands/add-messages", ok).await.0,
        StatusCode::OK
    );
    assert_eq!(pending(&api).await, 2, "nothing already queued was lost");
    // Delivery resumes after activation, and re-adding a sent message is `already sent`.
    api.post("/commands/activate?tenant_id=t1", json!({})).await;
    assert!(wait_for(10, || async { sink.count() == 2 }).await);
    assert!(wait_for(5, || async { pending(&api).await == 0 }).await);
    let (s, b) = api.post("/commands/add-messages", json!({"tenant_id": "t1", "messages": [{"id": "keep-1", "to": ["a@b.io"], "subject": "s"}]})).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "already sent alone is not a failure: {b}"
    );
    assert_eq!(b["rejected"][0]["reason"], "already sent");
    server.stop().await;
}

async fn oversize_bodies_are_413(db: Db) {
    let tdb = database(db).await;
    let mut c = common::config(&tdb.url);
    c.max_request_bytes = 1024;
    let server = start(c).await;
    let api = Api::new(&server);
    let big = "x".repeat(4096);
    let (s, b) = api.post("/tenant", json!({"id": "t", "name": big})).await;
    assert_eq!(
        (s, b),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"detail": "Request body too large"})
        )
    );
    server.stop().await;
}

async fn tokens_are_enforced(db: Db) {
    let tdb = database(db).await;
    let server = start(common::config(&tdb.url)).await;
    let admin = Api::new(&server);
    let (_, t1) = admin.post("/tenant", json!({"id": "t1"})).await;
    admin.post("/tenant", json!({"id": "t2"})).await;
    let key = t1["api_key"].as_str().unwrap().to_string();
    let tenant = admin.with_token(Some(&key));
    let nobody = admin.with_token(None);
    let wrong = admin.with_token(Some("wrong"));
    assert_eq!(admin.get("/health").await.0, StatusCode::OK);
    assert_eq!(nobody.get("/health").await.0, StatusCode::OK);
    assert_eq!(nobody.get("/metrics").await.0, StatusCode::OK);
    assert_eq!(
        nobody.get("/status").await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"detail": "Invalid or missing API token"})
        )
    );
    assert_eq!(wrong.get("/tenant/t1").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        nobody.get("/tenants").await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"detail": "Admin token required"})
        )
    );
    assert_eq!(
        tenant.get("/tenants").await,
        (
            StatusCode::FORBIDDEN,
            json!({"detail": "Admin token required, tenant tokens not allowed for this operation"})
        )
    );
    assert_eq!(
        tenant.post("/tenant", json!({"id": "t3"})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(tenant.get("/tenant/t1").await.0, StatusCode::OK);
    assert_eq!(
        tenant.get("/tenant/t2").await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"detail": "Token not authorized for this tenant"})
        )
    );
    assert_eq!(
        tenant.get("/accounts?tenant_id=t2").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        tenant.get("/accounts").await.0,
        StatusCode::OK,
        "a tenant token defaults to its own tenant"
    );
    // A tenant token cannot queue for another tenant.
    let (s, b) = tenant
        .post(
            "/commands/add-messages",
            json!({"messages": [{"id": "x", "tenant_id": "t2", "to": ["a@b.io"], "subject": "s"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["detail"]["rejected"][0]["reason"], "tenant mismatch");
    // Revoked keys stop working.
    admin
        .call(reqwest::Method::DELETE, "/tenant/t1/api-key", None)
        .await;
    assert_eq!(tenant.get("/tenant/t1").await.0, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

async fn secrets_are_never_returned(db: Db) {
    let tdb = database(db).await;
    let server = start(common::config(&tdb.url)).await;
    let api = Api::new(&server);
    api.post(
        "/tenant",
        json!({"id": "t", "client_auth": {"method": "bearer", "token": "tenant-secret"}}),
    )
    .await;
    api.post("/account", json!({"id": "a", "tenant_id": "t", "host": "h", "port": 25, "user": "u", "password": "smtp-secret"})).await;
    for path in [
        "/tenant/t",
        "/tenants",
        "/accounts?tenant_id=t",
        "/tenants/get?tenant_id=t",
        "/accounts/list?tenant_id=t",
    ] {
        let (s, b) = api.get(path).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        let text = b.to_string();
        assert!(
            !text.contains("tenant-secret")
                && !text.contains("smtp-secret")
                && !text.contains("api_key_hash"),
            "{path}: {text}"
        );
    }
    // At rest they are encrypted.
    let rows: Vec<(String,)> = sqlx::query_as("SELECT password FROM accounts")
        .fetch_all(server.store.pool())
        .await
        .unwrap();
    assert!(rows[0].0.starts_with("ENC:"));
    server.stop().await;
}

on_both_stores!(
    bad_inputs_get_4xx_and_lose_nothing,
    oversize_bodies_are_413,
    tokens_are_enforced,
    secrets_are_never_returned
);
