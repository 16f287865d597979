//! Test harness of the proxy: databases (SQLite in a temp dir, or a fresh PostgreSQL database
//! on the cluster the test command starts), a replica on port 0, an HTTP client, waits.
#![allow(dead_code)]

pub mod files;
pub mod process;
pub mod sink;
pub mod tenant_app;

use std::{future::Future, time::Duration};

use mailproxy::{Server, config::Config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, Executor};

/// Which store a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A database URL for one test, and what keeps it alive.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

pub fn pg_admin_url() -> String {
    std::env::var("GMP_TEST_PG_URL").expect(
        "GMP_TEST_PG_URL is not set: run ./scripts/test.sh, which starts a PostgreSQL test cluster",
    )
}

pub async fn database(db: Db) -> TestDb {
    match db {
        Db::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite:{}", dir.path().join("mail.db").display());
            TestDb {
                url,
                _dir: Some(dir),
            }
        }
        Db::Postgres => {
            let admin = pg_admin_url();
            let name = format!("t_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to the test PostgreSQL");
            conn.execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .unwrap();
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
            TestDb {
                url: format!("{base}/{name}"),
                _dir: None,
            }
        }
    }
}

/// A config for tests: fast loops, a fixed key, an admin token.
pub fn config(db_url: &str) -> Config {
    let mut c = Config::defaults();
    c.db_path = db_url.to_string();
    c.api_token = Some("admin-token".into());
    c.encryption_key = Some("MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=".into());
    c.send_loop_interval = 0.05;
    c.retry_delays = mailproxy::config::Delays(vec![1, 1, 1]);
    c
}

pub async fn start(c: Config) -> Server {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .try_init();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Server::start(c, listener, None)
        .await
        .expect("proxy starts")
}

/// Every message of `tenant` the proxy lists, history included (empty on an error answer).
pub async fn records(api: &Api, tenant: &str) -> Vec<Value> {
    let (_, b) = api
        .get(&format!(
            "/messages/list?tenant_id={tenant}&include_history=true"
        ))
        .await;
    b.as_array().cloned().unwrap_or_default()
}

/// A REST client bound to one replica.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    client: reqwest::Client,
}

impl Api {
    pub fn new(server: &Server) -> Api {
        Api {
            base: format!("http://{}", server.addr),
            token: Some("admin-token".into()),
            client: reqwest::Client::new(),
        }
    }

    /// A client bound to no server yet (set `base`).
    pub fn at(base: &str) -> Api {
        Api {
            base: base.to_string(),
            token: Some("admin-token".into()),
            client: reqwest::Client::new(),
        }
    }

    pub fn with_token(&self, token: Option<&str>) -> Api {
        Api {
            token: token.map(str::to_string),
            ..self.clone()
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.header("X-API-Token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn raw_post(&self, path: &str, body: &'static str) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(format!("{}{}", self.base, path))
            .header("X-API-Token", self.token.clone().unwrap_or_default())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Registers a tenant and an SMTP account pointing at `smtp_port` (classic dialect).
    pub async fn setup_tenant(&self, tenant: &str, smtp_port: u16) {
        let (s, b) = self
            .post(
                "/tenant",
                json!({"id": tenant, "name": format!("{tenant} name"), "active": true}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, b) = self
            .post("/account", json!({"id": "smtp1", "tenant_id": tenant, "smtp_host": "127.0.0.1", "smtp_port": smtp_port,
                "smtp_user": "u", "smtp_password": "p", "sender_email": format!("noreply@{tenant}.test"), "use_tls": false}))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
}

/// Polls `cond` every 20 ms until it holds or `secs` pass.
pub async fn wait_for<F, Fut>(secs: u64, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond().await
}

/// Generates one `#[tokio::test]` per store for a test body `async fn(Db)`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name($crate::common::Db::Sqlite).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name($crate::common::Db::Postgres).await } )* }
    };
}
