//! `client-sim setup` against a small fake proxy (axum on port 0) that upserts like the real
//! classic routes and records every request: everything is registered, a second run changes
//! nothing, and a refusal ends the step non-zero with the proxy's `detail`.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use client_sim::setup::{self, SetupArgs};
use serde_json::{Value, json};

#[derive(Default)]
struct Fake {
    tenants: BTreeMap<String, Value>,
    accounts: BTreeMap<(String, String), Value>,
    requests: Vec<(String, Value)>,
    health_failures_left: u32,
}

type Shared = Arc<Mutex<Fake>>;

fn upsert(stored: &mut Value, incoming: &Value) {
    let (Some(s), Some(i)) = (stored.as_object_mut(), incoming.as_object()) else {
        return;
    };
    for (k, v) in i {
        s.insert(k.clone(), v.clone());
    }
}

fn authorised(headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
    match headers.get("X-API-Token").and_then(|v| v.to_str().ok()) {
        Some("tok") => Ok(()),
        _ => Err((
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Invalid or missing API token"})),
        )),
    }
}

async fn tenant(
    State(s): State<Shared>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if let Err(e) = authorised(&h) {
        return e;
    }
    let mut fake = s.lock().expect("lock");
    fake.requests.push(("/tenant".to_owned(), body.clone()));
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    if id == "tenant-forbidden" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"detail": "tenant id not allowed here"})),
        );
    }
    let new = !fake.tenants.contains_key(&id);
    upsert(fake.tenants.entry(id).or_insert_with(|| json!({})), &body);
    let answer = if new {
        json!({"ok": true, "api_key": "secret-key"})
    } else {
        json!({"ok": true})
    };
    (StatusCode::OK, Json(answer))
}

async fn account(
    State(s): State<Shared>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if let Err(e) = authorised(&h) {
        return e;
    }
    let mut fake = s.lock().expect("lock");
    fake.requests.push(("/account".to_owned(), body.clone()));
    let tenant = body["tenant_id"].as_str().unwrap_or_default().to_owned();
    if !fake.tenants.contains_key(&tenant) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"detail": format!("Tenant '{tenant}' not found")})),
        );
    }
    let key = (tenant, body["id"].as_str().unwrap_or_default().to_owned());
    upsert(fake.accounts.entry(key).or_insert_with(|| json!({})), &body);
    (StatusCode::OK, Json(json!({"ok": true})))
}

async fn health(State(s): State<Shared>) -> StatusCode {
    let mut fake = s.lock().expect("lock");
    if fake.health_failures_left > 0 {
        fake.health_failures_left -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::OK
}

async fn start(health_failures: u32) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(Fake {
        health_failures_left: health_failures,
        ..Fake::default()
    }));
    let app = Router::new()
        .route("/tenant", post(tenant))
        .route("/account", post(account))
        .route("/health", get(health))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, shared)
}

fn args(url: &str) -> SetupArgs {
    SetupArgs {
        proxy_url: url.to_owned(),
        api_token: Some("tok".to_owned()),
        plan: None,
        plan_json: None,
        wait_seconds: 10,
        smtp_host: "mailhog".to_owned(),
        smtp_port: 1025,
        client_url_template: "http://client-{name}:8080".to_owned(),
    }
}

#[tokio::test]
async fn default_plan_registers_the_seed_tenants_idempotently() {
    let (url, fake) = start(3).await; // unhealthy for the first three probes
    setup::run(&args(&url)).await.expect("first run");
    let (tenants, accounts) = {
        let f = fake.lock().expect("lock");
        (f.tenants.clone(), f.accounts.clone())
    };
    let ids: Vec<_> = tenants.keys().cloned().collect();
    assert_eq!(
        ids,
        [
            "tenant-documents",
            "tenant-high-volume",
            "tenant-newsletter",
            "tenant-standard"
        ]
    );
    assert_eq!(
        tenants["tenant-high-volume"],
        json!({"id": "tenant-high-volume", "name": "High Volume Tenant", "active": true,
               "client_base_url": "http://client-high-volume:8080",
               "client_sync_path": "/sync", "client_attachment_path": "/attachments"})
    );
    assert_eq!(
        accounts[&("tenant-standard".to_owned(), "smtp-standard".to_owned())],
        json!({"id": "smtp-standard", "tenant_id": "tenant-standard", "smtp_host": "mailhog",
               "smtp_port": 1025, "smtp_user": "test", "smtp_password": "test",
               "sender_email": "noreply@standard.test", "use_tls": false, "use_ssl": false})
    );
    assert_eq!(accounts.len(), 4);

    setup::run(&args(&url)).await.expect("second run");
    let f = fake.lock().expect("lock");
    assert_eq!(f.tenants, tenants, "a second run changes nothing");
    assert_eq!(f.accounts, accounts);
    assert_eq!(f.requests.len(), 16, "both runs sent every request");
}

#[tokio::test]
async fn a_plan_from_json_is_registered_in_order() {
    let (url, fake) = start(0).await;
    let plan = json!({"tenants": [{
        "tenant": {"id": "t-a", "client_base_url": "http://127.0.0.1:9"},
        "accounts": [{"id": "a1", "tenant_id": "t-a", "smtp_host": "127.0.0.1", "smtp_port": 2525},
                     {"id": "a2", "tenant_id": "t-a", "smtp_host": "127.0.0.1", "smtp_port": 2526}]
    }]});
    let a = SetupArgs {
        plan_json: Some(plan.to_string()),
        ..args(&url)
    };
    setup::run(&a).await.expect("run");
    let f = fake.lock().expect("lock");
    let paths: Vec<_> = f
        .requests
        .iter()
        .map(|(p, b)| format!("{p} {}", b["id"]))
        .collect();
    assert_eq!(
        paths,
        ["/tenant \"t-a\"", "/account \"a1\"", "/account \"a2\""]
    );
}

#[tokio::test]
async fn refusal_exits_non_zero_with_the_proxy_reason() {
    let (url, _fake) = start(0).await;
    let plan = r#"{"tenants":[{"tenant":{"id":"tenant-forbidden"},"accounts":[]}]}"#;
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_client-sim"))
            .args(["setup", "--proxy-url", &url, "--wait-seconds", "10"])
            .env("GMP_API_TOKEN", "tok")
            .env("SETUP_PLAN", plan)
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tenant id not allowed here"), "{stderr}");
    assert!(stderr.contains("POST /tenant"), "{stderr}");
    assert!(
        !stderr.contains("tok\""),
        "the token is never printed: {stderr}"
    );
}

#[tokio::test]
async fn wrong_token_and_unhealthy_proxy_are_explained() {
    let (url, _fake) = start(0).await;
    let a = SetupArgs {
        api_token: Some("wrong".to_owned()),
        ..args(&url)
    };
    let err = setup::run(&a).await.expect_err("refused").to_string();
    assert!(
        err.contains("Invalid or missing API token") && err.contains("401"),
        "{err}"
    );

    let (url, _fake) = start(u32::MAX).await;
    let a = SetupArgs {
        wait_seconds: 1,
        ..args(&url)
    };
    let err = setup::run(&a).await.expect_err("never healthy").to_string();
    assert!(err.contains("not healthy within 1s"), "{err}");

    let a = SetupArgs {
        plan_json: Some("{\"tenants\": 3}".to_owned()),
        ..args(&url)
    };
    let err = setup::run(&a).await.expect_err("bad plan").to_string();
    assert!(err.contains("not a valid SetupPlanV1"), "{err}");
}
