//! A scripted fake HTTP API for polled sources (X, Google Business Profile and its token
//! endpoint, Yelp): each request is recorded (method, path, query, Authorization, form
//! body) and answered with the next scripted response for its path, or 500 when the test
//! scripted none, so an unexpected call fails loudly.

#![allow(dead_code)]
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub auth: Option<String>,
    pub body: String,
}

#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

pub fn ok(body: Value) -> Reply {
    Reply { status: 200, headers: Vec::new(), body }
}

pub fn status(status: u16, body: Value) -> Reply {
    Reply { status, headers: Vec::new(), body }
}

#[derive(Default)]
struct Inner {
    requests: Vec<Request>,
    script: HashMap<String, VecDeque<Reply>>,
}

#[derive(Clone, Default)]
pub struct FakeApi {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

impl FakeApi {
    pub async fn start() -> FakeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeApi { url: format!("http://{}", listener.local_addr().unwrap()), ..Default::default() };
        let app = axum::Router::new().fallback(answer).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// Queues the answer to the next request for `path`.
    pub fn script(&self, path: &str, reply: Reply) {
        self.inner.lock().unwrap().script.entry(path.to_string()).or_default().push_back(reply);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.inner.lock().unwrap().requests.clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.path == path).collect()
    }
}

async fn answer(
    State(fake): State<FakeApi>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = fake.inner.lock().unwrap();
    let path = uri.path().to_string();
    inner.requests.push(Request {
        method: method.to_string(),
        path: path.clone(),
        query,
        auth: headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let Some(reply) = inner.script.get_mut(&path).and_then(|q| q.pop_front()) else {
        let msg = format!("fake API: nothing scripted for {method} {path}");
        return (StatusCode::INTERNAL_SERVER_ERROR, msg).into_response();
    };
    let mut res = (StatusCode::from_u16(reply.status).unwrap(), axum::Json(reply.body)).into_response();
    for (k, v) in reply.headers {
        res.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(&v).unwrap(),
        );
    }
    res
}
