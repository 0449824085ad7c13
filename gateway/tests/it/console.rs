//! The web console's server-side rules, through the router: sessions only
//! from a token or a single-use link, links that expire and can be revoked,
//! viewers and read-only links that cannot change anything (whatever the
//! browser sends), forms that need their CSRF token, a receiver-scoped
//! session that cannot see another receiver, and the security headers.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Response};
use changewire_gateway::Config;
use changewire_gateway::testing::{Store, StoreUrl, generate_api_token, hash_token};
use changewire_test_support::Backend;
use changewire_test_support::gateway::{ADMIN_TOKEN, store_for};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

struct Console {
    router: axum::Router,
    store: Store,
    _guards: (
        Option<changewire_test_support::pg::TestDatabase>,
        tempfile::TempDir,
    ),
}

async fn console(backend: Backend, extra: &str) -> Console {
    let (store_url, db, dir) = store_for(backend).await;
    let toml = format!(
        "store = \"{store_url}\"\nadmin_token = \"{ADMIN_TOKEN}\"\nallow_http = true\nallow_private_networks = true\n{extra}"
    );
    let config = Arc::new(Config::from_toml(&toml).unwrap());
    let router = changewire_gateway::testing::api_router(config.clone())
        .await
        .unwrap();
    let store = Store::connect(&StoreUrl::parse("store", &store_url).unwrap())
        .await
        .unwrap();
    Console {
        router,
        store,
        _guards: (db, dir),
    }
}

struct Answer {
    status: u16,
    location: Option<String>,
    set_cookie: Option<String>,
    csp: Option<String>,
    frame_options: Option<String>,
    body: String,
}

async fn read(response: Response<Body>) -> Answer {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (status, location, set_cookie, csp, frame_options) = (
        response.status().as_u16(),
        header("location"),
        header("set-cookie"),
        header("content-security-policy"),
        header("x-frame-options"),
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        location,
        set_cookie,
        csp,
        frame_options,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

impl Console {
    async fn send(&self, request: Request<Body>) -> Answer {
        read(self.router.clone().oneshot(request).await.unwrap()).await
    }

    async fn graphql(&self, token: &str, query: &str, variables: Value) -> Value {
        let request = Request::post("/graphql")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(
                json!({"query": query, "variables": variables}).to_string(),
            ))
            .unwrap();
        serde_json::from_str(&self.send(request).await.body).unwrap()
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        let mut request = Request::get(path);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, path: &str, cookie: Option<&str>, form: &str) -> Answer {
        let mut request =
            Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        self.send(request.body(Body::from(form.to_string())).unwrap())
            .await
    }

    /// Mints a link as `token`; returns the GraphQL response.
    async fn link(&self, token: &str, input: Value) -> Value {
        self.graphql(
            token,
            "mutation($i: CreateConsoleSessionInput!) { createConsoleSession(input: $i) { id url expiresAt } }",
            json!({ "i": input }),
        )
        .await
    }

    /// Opens a link; returns the session cookie (`name=value`) and where it lands.
    async fn open(&self, url: &str) -> (String, String) {
        let answer = self.post(url, None, "").await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        let cookie = answer.set_cookie.expect("a session cookie");
        let pair = cookie.split(';').next().unwrap().to_string();
        (pair, answer.location.unwrap_or_default())
    }

    async fn receiver(&self, name: &str) -> String {
        let data = self
            .graphql(
                ADMIN_TOKEN,
                "mutation($i: CreateWebhookReceiverInput!) { createWebhookReceiver(input: $i) { webhookReceiver { id } } }",
                json!({"i": {"name": name, "webhookUri": "http://127.0.0.1:9/hook"}}),
            )
            .await;
        data["data"]["createWebhookReceiver"]["webhookReceiver"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{data}"))
            .to_string()
    }
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..].split('"').next().unwrap().to_string()
}

async fn links_open_once_expire_and_can_be_revoked(backend: Backend) {
    let c = console(backend, "").await;
    let signed_out = c.get("/console/events", None).await;
    assert_eq!(
        (signed_out.status, signed_out.location.as_deref()),
        (303, Some("/console/login"))
    );

    let link = c.link(ADMIN_TOKEN, json!({})).await;
    let link = &link["data"]["createConsoleSession"];
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with("/console/link/cwl_"), "{url}");
    // Fetching the link's page does not use it: previewers only GET.
    assert_eq!(c.get(url, None).await.status, 200);
    let answer = c.post(url, None, "").await;
    assert_eq!(answer.status, 303);
    assert_eq!(answer.location.as_deref(), Some("/console/events"));
    let cookie = answer.set_cookie.unwrap();
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain http, secure_cookies = auto: {cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let page = c.get("/console/events", Some(&session)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csp = page.csp.unwrap();
    assert!(
        csp.contains("script-src 'self';") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.frame_options.as_deref(), Some("DENY"));

    // Used once: refused, and no cookie is set.
    let again = c.post(url, None, "").await;
    assert_eq!(again.status, 403);
    assert!(again.body.contains("already used"), "{}", again.body);
    assert!(again.set_cookie.is_none());

    // Revoking the link ends the session it opened.
    let id = link["id"].as_str().unwrap();
    let revoked = c
        .graphql(
            ADMIN_TOKEN,
            "mutation($id: ID!) { revokeConsoleSession(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(revoked["data"]["revokeConsoleSession"], true, "{revoked}");
    assert_eq!(c.get("/console/events", Some(&session)).await.status, 303);

    // Lifetimes are bounded and named when wrong.
    for ttl in [0, 604_801] {
        let refused = c.link(ADMIN_TOKEN, json!({"ttlSeconds": ttl})).await;
        assert_eq!(
            refused["errors"][0]["extensions"]["field"], "input.ttlSeconds",
            "{refused}"
        );
    }
    let missing = c.link(ADMIN_TOKEN, json!({"receiverId": "999"})).await;
    assert_eq!(
        missing["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{missing}"
    );
    let expired = c.link(ADMIN_TOKEN, json!({"ttlSeconds": 1})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let url = expired["data"]["createConsoleSession"]["url"]
        .as_str()
        .unwrap();
    assert_eq!(c.post(url, None, "").await.status, 403);
}

async fn viewers_and_read_only_links_change_nothing(backend: Backend) {
    let c = console(backend, "").await;
    let rid = c.receiver("erp").await;
    let token = generate_api_token();
    c.store
        .insert_api_key("dashboards", "viewer", &hash_token(token.expose()), "cw_")
        .await
        .unwrap();
    let viewer = token.expose();

    // A viewer cannot mint a session that can change things.
    let refused = c.link(viewer, json!({"readOnly": false})).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    let read_only = c.link(viewer, json!({})).await;
    let url = read_only["data"]["createConsoleSession"]["url"]
        .as_str()
        .unwrap();
    let (session, _) = c.open(url).await;
    let page = c
        .get(&format!("/console/receivers/{rid}"), Some(&session))
        .await;
    assert!(page.body.contains("disabled"), "buttons are disabled");
    let csrf = csrf_of(&page.body);
    for action in ["pause", "test", "rotate"] {
        let answer = c
            .post(
                &format!("/console/receivers/{rid}/{action}"),
                Some(&session),
                &format!("csrf={csrf}&etag=x"),
            )
            .await;
        assert_eq!(answer.status, 403, "{action}: {}", answer.body);
        assert!(answer.body.contains("read-only"), "{}", answer.body);
    }
    let events = c
        .graphql(ADMIN_TOKEN, "{ webhookEvents { id } }", json!({}))
        .await;
    assert_eq!(
        events["data"]["webhookEvents"],
        json!([]),
        "no test was sent"
    );

    // An admin session still needs the form's CSRF token.
    let admin = c.link(ADMIN_TOKEN, json!({})).await;
    let (session, _) = c
        .open(
            admin["data"]["createConsoleSession"]["url"]
                .as_str()
                .unwrap(),
        )
        .await;
    for form in ["", "csrf=forged"] {
        let answer = c
            .post(
                &format!("/console/receivers/{rid}/test"),
                Some(&session),
                form,
            )
            .await;
        assert!(
            matches!(answer.status, 403 | 422),
            "{form}: {} {}",
            answer.status,
            answer.body
        );
    }
    let page = c
        .get(&format!("/console/receivers/{rid}"), Some(&session))
        .await;
    let sent = c
        .post(
            &format!("/console/receivers/{rid}/test"),
            Some(&session),
            &format!("csrf={}", csrf_of(&page.body)),
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert!(sent.location.unwrap().starts_with("/console/events/"));
    // The overview reads the window of recent attempts on both backends.
    let overview = c.get("/console", Some(&session)).await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(
        overview
            .body
            .contains(&format!("data-receiver-id=\"{rid}\"")),
        "{}",
        overview.body
    );
}

async fn a_receiver_scoped_session_sees_only_its_receiver(backend: Backend) {
    let c = console(
        backend,
        "[console]\nframe_ancestors = [\"https://app.example.com\"]\npublic_url = \"https://hooks.example.com\"",
    )
    .await;
    let mine = c.receiver("mine").await;
    let theirs = c.receiver("theirs").await;
    let link = c.link(ADMIN_TOKEN, json!({"receiverId": mine})).await;
    let url = link["data"]["createConsoleSession"]["url"]
        .as_str()
        .unwrap();
    let path = url
        .strip_prefix("https://hooks.example.com")
        .unwrap_or_else(|| panic!("absolute on public_url: {url}"));
    let answer = c.post(path, None, "").await;
    assert!(
        answer.set_cookie.unwrap().contains("Secure"),
        "https public_url"
    );
    assert_eq!(answer.location, Some(format!("/console/receivers/{mine}")));
    let (session, _) = {
        let link = c.link(ADMIN_TOKEN, json!({"receiverId": mine})).await;
        let url = link["data"]["createConsoleSession"]["url"]
            .as_str()
            .unwrap();
        c.open(url.trim_start_matches("https://hooks.example.com"))
            .await
    };
    let own = c
        .get(&format!("/console/receivers/{mine}"), Some(&session))
        .await;
    assert_eq!(own.status, 200);
    assert!(
        own.csp
            .unwrap()
            .ends_with("frame-ancestors https://app.example.com")
    );
    assert_eq!(
        own.frame_options, None,
        "framing is allowed for the listed origin"
    );
    let their_event = c
        .graphql(
            ADMIN_TOKEN,
            "mutation($r: ID!) { sendTestWebhook(receiverId: $r) { webhookEvent { id } } }",
            json!({"r": theirs}),
        )
        .await;
    let their_event = their_event["data"]["sendTestWebhook"]["webhookEvent"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{their_event}"))
        .to_string();
    for path in [
        format!("/console/receivers/{theirs}"),
        format!("/console/events?receiver={theirs}"),
        format!("/console/events/{their_event}"),
        format!("/console/debugger?event={their_event}"),
    ] {
        let answer = c.get(&path, Some(&session)).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
        assert!(!answer.body.contains("theirs"), "{path}");
    }
    let listed = c.get("/console/events", Some(&session)).await;
    assert!(
        !listed
            .body
            .contains(&format!("data-event-id=\"{their_event}\"")),
        "another receiver's event is not listed"
    );
    let csrf = csrf_of(&own.body);
    let answer = c
        .post(
            &format!("/console/receivers/{theirs}/pause"),
            Some(&session),
            &format!("csrf={csrf}&etag=x"),
        )
        .await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    // Another receiver's header cannot be removed through this receiver's URL.
    let header = c
        .graphql(
            ADMIN_TOKEN,
            "mutation($r: ID!) { addHeaderToWebhookReceiver(input: { receiverId: $r, key: \"X-Team\", value: \"billing\" }) { webhookHeader { id } } }",
            json!({"r": theirs}),
        )
        .await;
    let hid = header["data"]["addHeaderToWebhookReceiver"]["webhookHeader"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{header}"))
        .to_string();
    let answer = c
        .post(
            &format!("/console/receivers/{mine}/headers/{hid}/remove"),
            Some(&session),
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    let still = c
        .graphql(
            ADMIN_TOKEN,
            "query($id: ID!) { webhookReceiver(id: $id) { headers { key } } }",
            json!({"id": theirs}),
        )
        .await;
    assert_eq!(
        still["data"]["webhookReceiver"]["headers"],
        json!([{"key": "X-Team"}]),
        "{still}"
    );
    // The operator overview sends a scoped session to its receiver.
    let overview = c.get("/console", Some(&session)).await;
    assert_eq!(
        overview.location,
        Some(format!("/console/receivers/{mine}"))
    );
}

async fn a_disabled_console_is_not_served(backend: Backend) {
    let c = console(backend, "[console]\nenabled = false").await;
    assert_eq!(c.get("/console/login", None).await.status, 404);
    let refused = c.link(ADMIN_TOKEN, json!({})).await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("console] enabled = false"),
        "{refused}"
    );
}

/// The receiver page says how the receiver is reached (mutual TLS, OAuth2)
/// without showing any of its secrets.
async fn the_receiver_page_shows_egress_settings_not_secrets(backend: Backend) {
    let c = console(backend, "").await;
    let created = c
        .graphql(
            ADMIN_TOKEN,
            "mutation($i: CreateWebhookReceiverInput!) { createWebhookReceiver(input: $i) { webhookReceiver { id } } }",
            json!({"i": {"name": "oauth", "webhookUri": "http://127.0.0.1:9/hook",
                  "oauth2": {"tokenUrl": "http://127.0.0.1:9/token", "clientId": "cw-client", "clientSecret": "very-secret-value", "scope": "hooks"}}}),
        )
        .await;
    let rid = created["data"]["createWebhookReceiver"]["webhookReceiver"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();
    let link = c.link(ADMIN_TOKEN, json!({})).await;
    let (session, _) = c
        .open(
            link["data"]["createConsoleSession"]["url"]
                .as_str()
                .unwrap(),
        )
        .await;
    let page = c
        .get(&format!("/console/receivers/{rid}"), Some(&session))
        .await;
    assert!(
        page.body.contains("OAuth2") && page.body.contains("cw-client"),
        "{}",
        page.body
    );
    assert!(page.body.contains("http://127.0.0.1:9/token"));
    assert!(!page.body.contains("very-secret-value"));
}

both_backends! {
    console_receiver_page_shows_egress_settings => the_receiver_page_shows_egress_settings_not_secrets,
    console_links_open_once_expire_and_can_be_revoked => links_open_once_expire_and_can_be_revoked,
    console_viewers_and_read_only_links_change_nothing => viewers_and_read_only_links_change_nothing,
    console_a_receiver_scoped_session_sees_only_its_receiver => a_receiver_scoped_session_sees_only_its_receiver,
    console_a_disabled_console_is_not_served => a_disabled_console_is_not_served,
}
