//! The routes upstream's own clients call besides messages (issue 16 item 4): the instance and
//! its bounce settings, the command log of state-changing calls (secrets and inline data never
//! recorded; calls without a valid token never recorded), storages, PEC account lists and
//! deleting one message by its primary key. Each over real HTTP, on both stores.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Api, Db, database, start};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A new API key for `tenant`.
async fn tenant_token(api: &Api, tenant: &str) -> String {
    let (s, b) = api
        .post("/tenants/create_api_key", json!({"tenant_id": tenant}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["api_key"].as_str().unwrap().to_string()
}

async fn the_instance_keeps_its_bounce_settings_and_never_shows_the_password(db: Db) {
    let tdb = database(db).await;
    let server = start(common::config(&tdb.url)).await;
    let api = Api::new(&server);
    let (s, inst) = api.get("/instance").await;
    assert_eq!(s, StatusCode::OK, "{inst}");
    assert_eq!((&inst["id"], &inst["edition"]), (&json!(1), &json!("ee")));
    assert_eq!(inst["bounce_imap_port"], 993);

    let (s, b) = api
        .call(
            reqwest::Method::PUT,
            "/instance",
            Some(json!({"name": "staging", "bounce_enabled": true})),
        )
        .await;
    assert_eq!((s, &b), (StatusCode::OK, &json!({"ok": true})));
    let (s, b) = api.post("/instance/reload-bounce", json!({})).await;
    assert_eq!(
        (s, &b["detail"]),
        (
            StatusCode::BAD_REQUEST,
            &json!("Bounce enabled but imap_host not configured")
        )
    );
    let (s, b) = api
        .post(
            "/instance/set_bounce_config",
            json!({"bounce_imap_host": "imap.test", "bounce_imap_user": "bounces",
                "bounce_imap_password": "imap-secret", "bounce_imap_port": 143}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        api.post("/instance/reload_bounce", json!({})).await.0,
        StatusCode::OK
    );
    let (s, inst) = api.get("/instance/get").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            &inst["ok"],
            &inst["name"],
            &inst["bounce_imap_host"],
            &inst["bounce_imap_port"]
        ),
        (
            &json!(true),
            &json!("staging"),
            &json!("imap.test"),
            &json!(143)
        ),
        "{inst}"
    );
    let (_, bounce) = api.get("/instance/get_bounce_config").await;
    assert_eq!(bounce["bounce_imap_user"], "bounces", "{bounce}");
    for shown in [inst.to_string(), bounce.to_string()] {
        assert!(!shown.contains("imap-secret"), "{shown}");
    }
    let (s, b) = api.post("/instance/upgrade-to-ee", json!({})).await;
    assert_eq!((s, &b["edition"]), (StatusCode::OK, &json!("ee")));

    // Admin-only.
    api.setup_tenant("t1", 9).await;
    let tenant = api.with_token(Some(&tenant_token(&api, "t1").await));
    assert_eq!(tenant.get("/instance").await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        tenant
            .post("/instance/update", json!({"name": "x"}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

async fn state_changing_calls_are_recorded_without_their_secrets(db: Db) {
    let tdb = database(db).await;
    let server = start(common::config(&tdb.url)).await;
    let api = Api::new(&server);
    api.setup_tenant("t1", 9).await;
    let message = json!({"id": "M-1", "to": ["r@x.test"], "subject": "s",
        "attachments": [{"filename": "a.txt", "storage_path": "base64:aGVsbG8gd29ybGQh", "fetch_mode": "base64"}]});
    let (s, b) = api
        .post(
            "/commands/add-messages",
            json!({"tenant_id": "t1", "messages": [message]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Not recorded: a read, and a call without a valid token.
    api.get("/tenants").await;
    let (s, _) = api
        .with_token(Some("wrong"))
        .post("/tenant", json!({"id": "intruder"}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Recorded under the caller's own tenant, in the generated dialect, with its refusal.
    let tenant = api.with_token(Some(&tenant_token(&api, "t1").await));
    let (s, _) = tenant
        .post(
            "/messages/add_batch",
            json!({"messages": [{"id": "", "to": ["r@x.test"], "subject": "s"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, log) = api.get("/command-log").await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let entries = log["commands"].as_array().unwrap();
    let names: Vec<(&str, &str, i64)> = entries
        .iter()
        .map(|e| {
            (
                e["endpoint"].as_str().unwrap(),
                e["tenant_id"].as_str().unwrap_or("-"),
                e["response_status"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("addTenant", "t1", 200),
            ("addAccount", "t1", 200),
            ("addMessages", "t1", 200),
            ("createApiKey", "t1", 200),
            ("addMessages", "t1", 400),
        ],
        "{log}"
    );
    assert_eq!(log["total"], 5);
    let text = log.to_string();
    for secret in ["\"p\"", "aGVsbG8gd29ybGQh"] {
        assert!(!text.contains(secret), "{secret} recorded: {text}");
    }
    assert!(text.contains("<12 bytes>"), "{text}");
    assert_eq!(entries[1]["payload"]["smtp_password"], "***");

    // Generated reads: answers included, the key created never shown; filters; one entry.
    let (_, list) = api.get("/command_log/list?endpoint_filter=ApiKey").await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["response_body"]["api_key"], "***");
    // The filter is a plain substring: LIKE's wildcards in it match only themselves.
    for wildcard in ["%25", "_", "Api_ey"] {
        let (_, none) = api
            .get(&format!("/command_log/list?endpoint_filter={wildcard}"))
            .await;
        assert_eq!(none, json!([]), "endpoint_filter={wildcard}");
    }
    let id = list[0]["id"].as_i64().unwrap();
    let (s, one) = api.get(&format!("/command_log/get?command_id={id}")).await;
    assert_eq!(
        (s, &one["endpoint"]),
        (StatusCode::OK, &json!("createApiKey"))
    );
    assert_eq!(
        api.get("/command_log/get?command_id=999999").await.0,
        StatusCode::NOT_FOUND
    );
    let (_, export) = api.get("/command-log/export?tenant_id=t1").await;
    assert_eq!(export["commands"].as_array().unwrap().len(), 5, "{export}");
    let (_, page) = api.get("/command-log?limit=2&offset=4").await;
    assert_eq!(page["commands"].as_array().unwrap().len(), 1, "{page}");

    // A tenant token cannot read the log; the admin purges it (and that is recorded).
    assert_eq!(tenant.get("/command-log").await.0, StatusCode::FORBIDDEN);
    let (s, b) = api
        .post("/command_log/purge", json!({"threshold_ts": i64::MAX}))
        .await;
    assert_eq!((s, &b["deleted"]), (StatusCode::OK, &json!(5)), "{b}");
    let (_, log) = api.get("/command_log/export").await;
    let endpoints: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["endpoint"])
        .collect();
    assert_eq!(endpoints, [&json!("purgeCommandLog")]);
}

async fn the_command_log_can_be_switched_off(db: Db) {
    let tdb = database(db).await;
    let mut config = common::config(&tdb.url);
    config.command_log = false;
    let server = start(config).await;
    let api = Api::new(&server);
    api.setup_tenant("t1", 9).await;
    let (s, log) = api.get("/command-log").await;
    assert_eq!((s, &log["total"]), (StatusCode::OK, &json!(0)), "{log}");
}

async fn storages_pec_accounts_and_deleting_by_pk(db: Db) {
    let tdb = database(db).await;
    let base = tempfile::tempdir().unwrap();
    let mut config = common::config(&tdb.url);
    config.attachment_base_dir = Some(base.path().to_path_buf());
    let server = start(config).await;
    let api = Api::new(&server);
    api.setup_tenant("t1", 9).await;
    api.setup_tenant("t2", 9).await;

    let inside = base.path().join("t1/docs");
    let (s, st) = api
        .post(
            "/storages/add",
            json!({"tenant_id": "t1", "name": "docs", "protocol": "local",
                "config": {"base_path": inside}}),
        )
        .await;
    assert_eq!((s, &st["name"]), (StatusCode::OK, &json!("docs")), "{st}");
    for (body, why) in [
        (
            json!({"tenant_id": "t1", "name": "x", "protocol": "s3", "config": {}}),
            "Unsupported storage protocol",
        ),
        (
            json!({"tenant_id": "t1", "name": "x", "protocol": "local", "config": {"base_path": "/etc"}}),
            "config.base_path must lie inside GMP_ATTACHMENT_BASE_DIR",
        ),
        (
            json!({"tenant_id": "t1", "name": "x", "protocol": "local", "config": {"base_path": "a/../../etc"}}),
            "config.base_path must lie inside GMP_ATTACHMENT_BASE_DIR",
        ),
    ] {
        let (s, b) = api.post("/storages/add", body).await;
        assert_eq!((s, &b["detail"]), (StatusCode::BAD_REQUEST, &json!(why)));
    }
    let (_, list) = api.get("/storages/list?tenant_id=t1").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let t2 = api.with_token(Some(&tenant_token(&api, "t2").await));
    assert_eq!(
        t2.get("/storages/get?tenant_id=t1&name=docs").await.0,
        StatusCode::UNAUTHORIZED,
        "a tenant token naming another tenant, as on every tenant-scoped route"
    );
    assert_eq!(
        t2.get("/storages/get?name=docs").await.0,
        StatusCode::NOT_FOUND,
        "t2 has no storage of that name"
    );
    let (s, b) = api
        .post(
            "/storages/delete",
            json!({"tenant_id": "t1", "name": "docs"}),
        )
        .await;
    assert_eq!((s, &b["ok"]), (StatusCode::OK, &json!(true)));

    // PEC accounts: listed apart from plain ones.
    let (s, b) = api
        .post(
            "/accounts/add_pec",
            json!({"tenant_id": "t1", "id": "pec1", "host": "smtp.pec.test", "port": 465,
                "imap_host": "imap.pec.test", "imap_password": "pec-secret"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, pec) = api.get("/accounts/list_pec?tenant_id=t1").await;
    let ids: Vec<&Value> = pec.as_array().unwrap().iter().map(|a| &a["id"]).collect();
    assert_eq!(ids, [&json!("pec1")], "{pec}");
    assert!(!pec.to_string().contains("pec-secret"), "{pec}");
    let (_, ids) = api.get("/accounts/get_pec_ids?tenant_id=t1").await;
    assert_eq!(ids, json!(["pec1"]));

    // One message by its primary key: not another tenant's.
    let (s, b) = api
        .post(
            "/commands/add-messages",
            json!({"tenant_id": "t1", "messages": [{"id": "D-1", "account_id": "smtp1", "to": ["r@x.test"],
                "subject": "s", "deferred_ts": 4_000_000_000i64}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, list) = api.get("/messages/list?tenant_id=t1").await;
    let pk = list[0]["pk"].as_str().unwrap().to_string();
    let (s, _) = t2.post("/messages/delete", json!({"message_pk": pk})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant's message");
    let (s, b) = api
        .post("/messages/delete", json!({"message_pk": pk}))
        .await;
    assert_eq!((s, &b), (StatusCode::OK, &json!({"ok": true})));
    let (_, list) = api.get("/messages/list?tenant_id=t1").await;
    assert_eq!(list, json!([]));
}

on_both_stores!(
    the_instance_keeps_its_bounce_settings_and_never_shows_the_password,
    state_changing_calls_are_recorded_without_their_secrets,
    the_command_log_can_be_switched_off,
    storages_pec_accounts_and_deleting_by_pk,
);
