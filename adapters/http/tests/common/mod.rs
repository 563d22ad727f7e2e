//! Shared setup of the handler tests: the routes over the domain fakes, and helpers to
//! call them as a given user.

#![allow(dead_code)]

use acmeport_domain::testing::Kit;
use acmeport_domain::{Password, Username, WorkerId};
use acmeport_http::{routes, Api, HttpConfig, NotReady, PublicUrl, Readiness};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use warp::filters::BoxedFilter;
use warp::http::HeaderMap;
use warp::reply::Response;

pub const BASE: &str = "https://acme.test";
pub const ADMIN: (&str, &str) = ("admin", "admin-password");
pub const ALICE: (&str, &str) = ("alice", "alice-password");
pub const BOB: (&str, &str) = ("bob", "bob-password");
pub const CHALLENGE: &str = r#"Basic realm="Authentication Required""#;

/// A readiness probe the test can switch.
pub struct Switch(pub AtomicBool);

#[async_trait]
impl Readiness for Switch {
    async fn check(&self) -> Result<(), NotReady> {
        if self.0.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(NotReady::new("database unreachable at /secret/path", None))
        }
    }
}

pub struct App {
    pub kit: Kit,
    pub routes: BoxedFilter<(Response,)>,
    pub ready: Arc<Switch>,
}

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn reason(&self) -> &str {
        self.body["status"]
            .as_str()
            .unwrap_or_else(|| panic!("no status field in {}", self.text))
    }

    pub fn id(&self) -> i64 {
        self.body["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no id in {}", self.text))
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "expected {status}, got {} with body {}",
            self.status, self.text
        );
        self
    }
}

pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

pub async fn app_with_limit(body_limit: u64) -> App {
    app_with(Kit::new(), body_limit).await
}

/// The routes over `kit`, with the users admin, alice and bob.
pub async fn app_with(kit: Kit, body_limit: u64) -> App {
    for (name, password, admin) in [
        (ADMIN.0, ADMIN.1, true),
        (ALICE.0, ALICE.1, false),
        (BOB.0, BOB.1, false),
    ] {
        kit.service
            .add_user(
                Username::parse(name).expect("valid name"),
                &Password::new(password),
                admin,
            )
            .await
            .expect("user created");
    }
    let ready = Arc::new(Switch(AtomicBool::new(true)));
    let config = HttpConfig {
        public_url: PublicUrl::parse(BASE).expect("valid URL"),
        body_limit,
    };
    let routes = routes(Api::new(kit.service.clone(), ready.clone(), config));
    App { kit, routes, ready }
}

pub async fn app() -> App {
    app_with_limit(HttpConfig::DEFAULT_BODY_LIMIT).await
}

impl App {
    pub async fn raw(&self, request: warp::test::RequestBuilder) -> Answer {
        let response = request.reply(&self.routes).await;
        let text = String::from_utf8(response.body().to_vec()).expect("UTF-8 body");
        let json = response
            .headers()
            .get("content-type")
            .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
        // Only the docs page and its files are not JSON.
        let body = if json {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
        } else {
            Value::Null
        };
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body,
            text,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        who: Option<(&str, &str)>,
        body: Option<&str>,
    ) -> Answer {
        let mut request = warp::test::request().method(method).path(path);
        if let Some((user, password)) = who {
            request = request.header("authorization", basic(user, password));
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        self.raw(request).await
    }

    pub async fn get(&self, path: &str, who: (&str, &str)) -> Answer {
        self.call("GET", path, Some(who), None).await
    }

    pub async fn post(&self, path: &str, who: (&str, &str), body: &Value) -> Answer {
        self.call("POST", path, Some(who), Some(&body.to_string()))
            .await
    }

    /// Runs the background work until no order is pending.
    pub async fn work(&self) {
        let worker = WorkerId::new("test-worker");
        for _ in 0..100 {
            match self.kit.service.work_one(&worker).await {
                Ok(Some(_)) => continue,
                Ok(None) => return,
                Err(e) => panic!("working an order failed: {e}"),
            }
        }
        panic!("orders were still pending after 100 rounds");
    }

    pub async fn account(&self, who: (&str, &str), email: &str) -> i64 {
        let a = self
            .post("/api/acme", who, &json!({ "email": email }))
            .await;
        assert!(a.status == 201 || a.status == 200, "{}", a.text);
        a.id()
    }

    /// An account, an order worked to `valid`, and its certificate id.
    pub async fn issued(&self, who: (&str, &str), domain: &str) -> (i64, i64, i64) {
        let account = self.account(who, &format!("{}@example.com", who.0)).await;
        let order = self
            .post(
                "/api/order",
                who,
                &json!({ "domains": [domain], "account": account }),
            )
            .await;
        assert!(order.status == 201 || order.status == 200, "{}", order.text);
        let order = order.id();
        self.work().await;
        let got = self
            .get(&format!("/api/order/{order}"), who)
            .await
            .expect(200);
        let certificate = got.body["resolved_cert_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("order not issued: {}", got.text));
        (account, order, certificate)
    }
}
