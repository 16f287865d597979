//! Redirects of attachment downloads on a real HTTP server on 127.0.0.1: each hop passes the
//! same check as the first request, credentials stay with the first origin, a 303 turns the
//! `endpoint` POST into a GET, and a loop ends.

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::any,
};

use super::*;
use crate::{
    attachments::{guard, resolve},
    config::Hosts,
};

/// `(method, path, Authorization)` of every request served.
type Seen = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

#[derive(Clone)]
struct App {
    port: u16,
    seen: Seen,
}

async fn serve(
    State(app): State<App>,
    method: axum::http::Method,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_string());
    app.seen
        .lock()
        .unwrap()
        .push((method.to_string(), key.clone(), auth));
    let to = |status: StatusCode, location: String| {
        (status, [(header::LOCATION, location)]).into_response()
    };
    match key.as_str() {
        "doc" => "content".into_response(),
        "same" => to(StatusCode::FOUND, "/doc".into()),
        "see-other" => to(StatusCode::SEE_OTHER, "doc".into()),
        "foreign" => to(
            StatusCode::FOUND,
            format!("http://localhost:{}/doc", app.port),
        ),
        "meta" => to(StatusCode::FOUND, "http://[fe80::1]/latest/".into()),
        "loop" => to(StatusCode::TEMPORARY_REDIRECT, "/loop".into()),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start() -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = App {
        port: listener.local_addr().unwrap().port(),
        seen: Seen::default(),
    };
    let router = Router::new()
        .route("/{key}", any(serve))
        .with_state(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    app
}

/// Downloads `key` as a URL the message names, from the tenant's own host (127.0.0.1).
async fn fetch(app: &App, key: &str, post: bool, allowed: &[&str]) -> Result<String, Fail> {
    // The test server is on loopback, which a deployment would list.
    let allowed = Hosts(
        allowed
            .iter()
            .chain(&["127.0.0.1"])
            .map(|h| h.to_string())
            .collect(),
    );
    let base = format!("http://127.0.0.1:{}", app.port);
    let target = Target {
        url: Url::parse(&format!("{base}/{key}")).unwrap(),
        post: post.then(|| "p".to_string()),
        authorization: Some("Bearer secret".into()),
    };
    let check = |u: &Url, _hop: bool| guard::check_hop(u, true, Some(&base), None, &allowed);
    let client = resolve::client(&allowed, resolve::system_lookup());
    let mut w = SpoolWriter::new(None, 1024);
    download(&client, &target, &check, &mut w, "f", 1024).await?;
    let bytes = w.finish().await.unwrap().spool.to_bytes().await.unwrap();
    Ok(String::from_utf8(bytes.to_vec()).unwrap())
}

fn seen(app: &App) -> Vec<(String, String, Option<String>)> {
    std::mem::take(&mut *app.seen.lock().unwrap())
}

fn call(method: &str, key: &str, auth: Option<&str>) -> (String, String, Option<String>) {
    (method.into(), key.into(), auth.map(str::to_string))
}

#[tokio::test]
async fn a_redirect_on_the_same_origin_keeps_the_credentials() {
    let app = start().await;
    assert_eq!(fetch(&app, "same", false, &[]).await.unwrap(), "content");
    let auth = Some("Bearer secret");
    assert_eq!(
        seen(&app),
        [call("GET", "same", auth), call("GET", "doc", auth)]
    );
    assert_eq!(
        fetch(&app, "see-other", true, &[]).await.unwrap(),
        "content"
    );
    assert_eq!(
        seen(&app),
        [call("POST", "see-other", auth), call("GET", "doc", auth)]
    );
}

#[tokio::test]
async fn a_redirect_to_a_host_not_allowed_is_refused_before_it_is_followed() {
    let app = start().await;
    let err = fetch(&app, "foreign", false, &[]).await.unwrap_err();
    assert_eq!(
        (err.why.as_str(), err.temporary),
        ("Host not allowed: localhost", false)
    );
    let err = fetch(&app, "meta", false, &["*"]).await.unwrap_err();
    assert_eq!(
        (err.why.as_str(), err.temporary),
        ("Link-local address not allowed: fe80::1", false)
    );
    assert_eq!(
        seen(&app),
        [
            call("GET", "foreign", Some("Bearer secret")),
            call("GET", "meta", Some("Bearer secret"))
        ],
        "no hop was followed"
    );
}

#[tokio::test]
async fn credentials_never_follow_a_redirect_to_another_origin() {
    let app = start().await;
    let got = fetch(&app, "foreign", false, &["localhost"]).await.unwrap();
    assert_eq!(got, "content");
    assert_eq!(
        seen(&app),
        [
            call("GET", "foreign", Some("Bearer secret")),
            call("GET", "doc", None)
        ]
    );
}

#[tokio::test]
async fn a_redirect_loop_ends() {
    let app = start().await;
    let err = fetch(&app, "loop", false, &[]).await.unwrap_err();
    assert_eq!(
        (err.why.as_str(), err.temporary),
        ("Too many redirects (more than 10)", false)
    );
    assert_eq!(seen(&app).len(), 11);
}
