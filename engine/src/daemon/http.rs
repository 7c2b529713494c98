//! Routes, keys, limits and errors (spec/openapi.yaml).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use opentelemetry::{Context, KeyValue};
use serde_json::{Value as Json, json};
use subtle::ConstantTimeEq as _;
use tailor_dsl::types::{Value, to_json};

use super::reload::{Served, Trigger};
use super::tap::RunTap;
use super::{App, RETRY_AFTER, telemetry};
use crate::exec::{Outcome, RunReport, RunRequest, StageReport, bind_inputs};
use crate::host::json_to_value;
use crate::store::{item_from_json, item_to_json};

pub(super) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The most items one ingest request may carry.
const MAX_ITEMS_PER_REQUEST: usize = 10_000;

/// Accepts connections until `stop`, then drains.
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    stop: Arc<tokio::sync::Notify>,
    watcher: Option<(notify::RecommendedWatcher, tokio::task::JoinHandle<()>)>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        eprintln!("accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let service = hyper::service::service_fn(move |req| {
                    let app = Arc::clone(&app);
                    async move { Ok::<_, Infallible>(handle(app, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(30))
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = stop.notified() => break,
        }
    }
    drop(listener);
    if let Some((watcher, task)) = watcher {
        drop(watcher);
        task.abort();
    }
    if tokio::time::timeout(app.config.limits.drain, graceful.shutdown()).await.is_err() {
        eprintln!("stopping: requests still in flight after {:?}; closing them", app.config.limits.drain);
    }
    let tracing = Arc::clone(&app.tracing);
    let _ = tokio::task::spawn_blocking(move || tracing.shutdown()).await;
}

/// An error answer: a status and a stable code (spec/openapi.yaml, `Error`).
#[derive(Debug)]
pub(super) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub extra: Option<Json>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), extra: None }
    }

    pub fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message.to_string())
    }

    /// OpenAI's error shape, with our code: `{"error": {"code", "message", "type"}}`.
    pub fn body(&self) -> Json {
        let kind = match self.status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 | 503 => "overloaded_error",
            s if s >= 500 => "server_error",
            _ => "invalid_request_error",
        };
        let mut error = json!({"code": self.code, "message": self.message, "type": kind});
        if let Some(Json::Object(extra)) = &self.extra {
            for (k, v) in extra {
                error[k] = v.clone();
            }
        }
        json!({ "error": error })
    }

    fn response(&self) -> Response<Body> {
        let mut resp = json_response(self.status, &self.body());
        match self.status {
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER.as_secs()));
            }
            StatusCode::UNAUTHORIZED => {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                let allow = self
                    .extra
                    .as_ref()
                    .and_then(|e| e["allow"].as_array())
                    .map(|a| a.iter().filter_map(Json::as_str).collect::<Vec<_>>().join(", "));
                if let Some(v) = allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
                    resp.headers_mut().insert(header::ALLOW, v);
                }
            }
            _ => {}
        }
        resp
    }
}

pub(super) fn json_response(status: StatusCode, body: &Json) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())).boxed_unsync());
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Every route: method and path template (spec/openapi.yaml documents exactly these).
pub const ROUTES: [(&str, &str); 16] = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/v1/admin/reload"),
    ("POST", "/v1/admin/reload"),
    ("GET", "/v1/pipelines"),
    ("GET", "/v1/plugins"),
    ("GET", "/v1/models"),
    ("POST", "/v1/pipelines/{name}/run"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/users"),
    ("GET", "/v1/users/{user}/items"),
    ("POST", "/v1/users/{user}/items"),
    ("DELETE", "/v1/users/{user}/items/{id}"),
    ("GET", "/v1/users/{user}/export"),
    ("DELETE", "/v1/users/{user}"),
];

/// What a path names.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Route {
    Healthz,
    Readyz,
    Metrics,
    Reload,
    Pipelines,
    Plugins,
    Models,
    Run(String),
    Chat,
    Users,
    Items(String),
    Item(String, String),
    Export(String),
    User(String),
}

impl Route {
    /// The route's template, for metrics and span names (never a user's name).
    pub fn template(&self) -> &'static str {
        match self {
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::Reload => "/v1/admin/reload",
            Route::Pipelines => "/v1/pipelines",
            Route::Plugins => "/v1/plugins",
            Route::Models => "/v1/models",
            Route::Run(_) => "/v1/pipelines/{name}/run",
            Route::Chat => "/v1/chat/completions",
            Route::Users => "/v1/users",
            Route::Items(_) => "/v1/users/{user}/items",
            Route::Item(..) => "/v1/users/{user}/items/{id}",
            Route::Export(_) => "/v1/users/{user}/export",
            Route::User(_) => "/v1/users/{user}",
        }
    }

    /// The methods the route answers.
    pub fn methods(&self) -> &'static [Method] {
        match self {
            Route::Healthz | Route::Readyz | Route::Metrics => &[Method::GET],
            Route::Reload => &[Method::GET, Method::POST],
            Route::Pipelines | Route::Plugins | Route::Models | Route::Users | Route::Export(_) => &[Method::GET],
            Route::Run(_) | Route::Chat => &[Method::POST],
            Route::Items(_) => &[Method::GET, Method::POST],
            Route::Item(..) | Route::User(_) => &[Method::DELETE],
        }
    }

    pub fn admin(&self) -> bool {
        matches!(self, Route::Metrics | Route::Reload)
    }

    pub fn open(&self) -> bool {
        matches!(self, Route::Healthz | Route::Readyz)
    }

    pub(super) fn parse(path: &str) -> Result<Route, ApiError> {
        let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no route {path}"));
        let mut segments = Vec::new();
        for raw in path.strip_prefix('/').ok_or_else(not_found)?.split('/') {
            let decoded = percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| ApiError::bad("invalid_path", "a path segment is not UTF-8 once decoded"))?;
            if decoded.is_empty() {
                return Err(not_found());
            }
            segments.push(decoded.into_owned());
        }
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        Ok(match s.as_slice() {
            ["healthz"] => Route::Healthz,
            ["readyz"] => Route::Readyz,
            ["metrics"] => Route::Metrics,
            ["v1", "admin", "reload"] => Route::Reload,
            ["v1", "pipelines"] => Route::Pipelines,
            ["v1", "plugins"] => Route::Plugins,
            ["v1", "models"] => Route::Models,
            ["v1", "pipelines", name, "run"] => Route::Run(name.to_string()),
            ["v1", "chat", "completions"] => Route::Chat,
            ["v1", "users"] => Route::Users,
            ["v1", "users", user, "items"] => Route::Items(user.to_string()),
            ["v1", "users", user, "items", id] => Route::Item(user.to_string(), id.to_string()),
            ["v1", "users", user, "export"] => Route::Export(user.to_string()),
            ["v1", "users", user] => Route::User(user.to_string()),
            _ => return Err(not_found()),
        })
    }
}

/// A user id as the store keeps it: 1 to 256 bytes, no control characters.
pub(super) fn check_user(user: &str) -> Result<(), ApiError> {
    if user.is_empty() || user.len() > 256 || user.chars().any(char::is_control) {
        return Err(ApiError::bad("invalid_user", "a user id is 1 to 256 bytes without control characters"));
    }
    Ok(())
}

/// Who a key belongs to.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Principal {
    Tenant(String),
    Admin,
}

/// Finds the key's owner, comparing its hash with every configured hash in constant time (all
/// are compared, whatever matches).
fn authenticate(app: &App, headers: &hyper::HeaderMap) -> Result<Principal, ApiError> {
    let unauthorized = |code, message: &str| ApiError::new(StatusCode::UNAUTHORIZED, code, message);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized("missing_key", "send the API key as `Authorization: Bearer KEY`"));
    };
    let key = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| unauthorized("missing_key", "send the API key as `Authorization: Bearer KEY`"))?;
    let presented = super::KeyHash::of(key);
    let mut found: Option<Principal> = None;
    for tenant in &app.config.tenants {
        for k in &tenant.keys {
            if bool::from(k.0.ct_eq(&presented.0)) {
                found = Some(Principal::Tenant(tenant.name.clone()));
            }
        }
    }
    for k in &app.config.admin_keys {
        if bool::from(k.0.ct_eq(&presented.0)) {
            found = Some(Principal::Admin);
        }
    }
    found.ok_or_else(|| unauthorized("invalid_key", "the API key is not valid"))
}

/// Counts the request and ends its span when the answer is complete (for a stream, when the
/// stream ends or the client goes away).
pub(super) struct Finish {
    app: Arc<App>,
    route: &'static str,
    method: Method,
    started: Instant,
    pub cx: Option<Context>,
    pub status: u16,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Whether dropping this one counts the request (a stream takes the armed one along).
    armed: bool,
}

impl Finish {
    /// When the request must be answered by: its arrival plus the configured deadline.
    pub fn deadline(&self) -> Instant {
        self.started + self.app.config.limits.deadline
    }

    /// The armed guard, to be dropped when a streamed answer ends; this one is disarmed.
    pub fn detach(&mut self, status: u16) -> Finish {
        self.armed = false;
        Finish {
            app: Arc::clone(&self.app),
            route: self.route,
            method: self.method.clone(),
            started: self.started,
            cx: self.cx.clone(),
            status,
            _permit: self._permit.take(),
            armed: true,
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let m = &self.app.metrics;
        m.in_flight.dec();
        let labels = vec![
            ("route", self.route.to_owned()),
            ("method", self.method.as_str().to_owned()),
            ("status", self.status.to_string()),
        ];
        m.requests.get_or_create(&labels).inc();
        m.request_seconds
            .get_or_create(&vec![("route", self.route.to_owned())])
            .observe(self.started.elapsed().as_secs_f64());
        if let Some(cx) = &self.cx {
            telemetry::end(cx, self.status);
        }
    }
}

async fn handle(app: Arc<App>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let has_body = req.headers().get(header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0")
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    app.metrics.in_flight.inc();
    let route = Route::parse(req.uri().path());
    let template = route.as_ref().map_or("unknown", Route::template);
    let cx = route.as_ref().ok().filter(|r| !r.open() && **r != Route::Metrics).map(|_| {
        let attributes = vec![
            KeyValue::new("http.request.method", method.as_str().to_owned()),
            KeyValue::new("http.route", template),
        ];
        app.tracing.request(format!("{method} {template}"), req.headers(), attributes)
    });
    let mut finish =
        Finish { app: Arc::clone(&app), route: template, method, started, cx, status: 500, _permit: None, armed: true };
    let mut response = match route {
        Err(e) => e.response(),
        Ok(route) => match admit(&app, &route, &req, &mut finish) {
            Err(e) => e.response(),
            Ok(principal) => {
                // A reload takes as long as compiling the plugins takes; it is not cut short.
                let deadline = if route == Route::Reload {
                    std::time::Duration::from_secs(60 * 60 * 24)
                } else {
                    app.config.limits.deadline
                };
                match tokio::time::timeout(deadline, dispatch(&app, route, principal, req, &mut finish)).await {
                    Ok(Ok(resp)) => resp,
                    Ok(Err(e)) => e.response(),
                    Err(_) => ApiError::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        "deadline_exceeded",
                        format!("the request passed its deadline of {deadline:?}"),
                    )
                    .response(),
                }
            }
        },
    };
    if let Some(cx) = &finish.cx {
        let id = telemetry::trace_id(cx);
        if let Ok(v) = HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-trace-id", v);
        }
    }
    finish.status = response.status().as_u16();
    // An error may be answered before the body is read (a key, a route, the size limit): the
    // connection cannot be reused then, and the client must not try.
    if has_body && response.status().as_u16() >= 400 {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Method, concurrency and key checks, before the body is read.
fn admit(
    app: &Arc<App>,
    route: &Route,
    req: &Request<hyper::body::Incoming>,
    finish: &mut Finish,
) -> Result<Option<Principal>, ApiError> {
    if !route.methods().contains(req.method()) {
        let allowed: Vec<&str> = route.methods().iter().map(Method::as_str).collect();
        let mut e = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} takes {}", route.template(), allowed.join(", ")),
        );
        e.extra = Some(json!({ "allow": allowed }));
        return Err(e);
    }
    if route.open() {
        return Ok(None);
    }
    let principal = authenticate(app, req.headers())?;
    match (&principal, route.admin()) {
        (Principal::Tenant(_), true) => {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "admin_only", "this route needs the admin key"));
        }
        (Principal::Admin, false) if !matches!(route, Route::Pipelines | Route::Plugins | Route::Models) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "no_tenant",
                "the admin key belongs to no tenant; use a tenant's key for users' data and runs",
            ));
        }
        _ => {}
    }
    if !route.admin() {
        match Arc::clone(&app.limiter).try_acquire_owned() {
            Ok(permit) => finish._permit = Some(permit),
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    format!(
                        "{} requests are in flight, the most this daemon serves at once",
                        app.config.limits.concurrency
                    ),
                ));
            }
        }
    }
    Ok(Some(principal))
}

/// The request's JSON object body, within the size limit.
async fn json_body(app: &App, req: Request<hyper::body::Incoming>) -> Result<serde_json::Map<String, Json>, ApiError> {
    let limit = app.config.limits.body_bytes;
    let too_large =
        || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the body is over {limit} bytes"));
    if let Some(len) = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    let bytes = match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return Err(too_large()),
        Err(e) => return Err(ApiError::bad("unreadable_body", format!("reading the body: {e}"))),
    };
    match serde_json::from_slice::<Json>(&bytes) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(other) => {
            Err(ApiError::bad("invalid_body", format!("the body must be a JSON object, not {}", json_kind(&other))))
        }
        Err(e) => Err(ApiError::bad("invalid_json", format!("the body is not JSON: {e}"))),
    }
}

pub(super) fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Refuses keys other than `known`.
pub(super) fn only_keys(body: &serde_json::Map<String, Json>, known: &[&str]) -> Result<(), ApiError> {
    for key in body.keys() {
        if !known.contains(&key.as_str()) {
            return Err(ApiError::bad("unknown_field", format!("unknown field `{key}` (known: {})", known.join(", "))));
        }
    }
    Ok(())
}

pub(super) fn to_json_value(v: &Value) -> Json {
    serde_json::from_str(&to_json(v)).unwrap_or(Json::Null)
}

async fn dispatch(
    app: &Arc<App>,
    route: Route,
    principal: Option<Principal>,
    req: Request<hyper::body::Incoming>,
    finish: &mut Finish,
) -> Result<Response<Body>, ApiError> {
    let tenant = match &principal {
        Some(Principal::Tenant(t)) => t.clone(),
        _ => String::new(),
    };
    let ok = |body: Json| Ok(json_response(StatusCode::OK, &body));
    match route {
        Route::Healthz => ok(json!({"status": "ok"})),
        Route::Readyz => {
            let g = app.reloader.current();
            ok(json!({"status": "ready", "version": g.version, "pipelines": g.pipelines.len()}))
        }
        Route::Metrics => {
            let mut resp = Response::new(Full::new(Bytes::from(app.metrics.render())).boxed_unsync());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            Ok(resp)
        }
        Route::Reload if req.method() == Method::GET => match app.reloader.last() {
            Some(outcome) => ok(serde_json::to_value(outcome).map_err(ApiError::internal)?),
            None => ok(json!({"outcome": null, "version": app.reloader.current().version})),
        },
        Route::Reload => {
            let outcome = app.reload(Trigger::Admin).await;
            let status = match outcome.outcome {
                super::reload::Status::RolledBack => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::OK,
            };
            Ok(json_response(status, &serde_json::to_value(outcome).map_err(ApiError::internal)?))
        }
        Route::Pipelines => {
            let g = app.reloader.current();
            let list: Vec<Json> = g.pipelines.values().map(pipeline_json).collect();
            ok(json!({"version": g.version, "pipelines": list}))
        }
        Route::Plugins => {
            let g = app.reloader.current();
            let list: Vec<Json> = g
                .catalog
                .iter()
                .map(|e| {
                    let d = e.descriptor();
                    let origin = match &e.origin {
                        crate::registry::Origin::Builtin => "builtin".to_string(),
                        crate::registry::Origin::File(p) => p.display().to_string(),
                    };
                    json!({
                        "name": d.name,
                        "version": d.version.to_string(),
                        "kind": format!("{:?}", d.kind).to_lowercase(),
                        "summary": d.summary,
                        "origin": origin,
                        "sha256": e.plugin.sha256(),
                    })
                })
                .collect();
            ok(json!({"version": g.version, "plugins": list}))
        }
        Route::Models => {
            let g = app.reloader.current();
            let created = g.loaded_at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let data: Vec<Json> = g
                .pipelines
                .keys()
                .map(|name| json!({"id": name, "object": "model", "created": created, "owned_by": "tailor"}))
                .collect();
            ok(json!({"object": "list", "data": data}))
        }
        Route::Run(name) => {
            let body = json_body(app, req).await?;
            run_route(app, &tenant, &name, body, finish).await
        }
        Route::Chat => {
            let body = json_body(app, req).await?;
            super::chat::completions(app, &tenant, body, finish).await
        }
        Route::Users => {
            let users = app.store.users(&tenant).await.map_err(ApiError::internal)?;
            ok(json!({"users": users}))
        }
        Route::Items(user) if req.method() == Method::GET => {
            check_user(&user)?;
            let items = app.store.items(&tenant, &user).await.map_err(ApiError::internal)?;
            let version = app.store.history_version(&tenant, &user).await.map_err(ApiError::internal)?;
            if version == 0 {
                return Err(user_not_found(&user));
            }
            let items: Vec<Json> = items.iter().map(|s| item_to_json(&s.item)).collect();
            ok(json!({"user": user, "history_version": version, "items": items}))
        }
        Route::Items(user) => {
            check_user(&user)?;
            let body = json_body(app, req).await?;
            only_keys(&body, &["items"])?;
            let Some(Json::Array(list)) = body.get("items") else {
                return Err(ApiError::bad("invalid_body", "`items` must be an array of items"));
            };
            if list.is_empty() || list.len() > MAX_ITEMS_PER_REQUEST {
                return Err(ApiError::bad(
                    "invalid_body",
                    format!("send 1 to {MAX_ITEMS_PER_REQUEST} items per request, not {}", list.len()),
                ));
            }
            let mut items = Vec::with_capacity(list.len());
            for (i, json) in list.iter().enumerate() {
                items
                    .push(item_from_json(json).map_err(|e| ApiError::bad("invalid_item", format!("items[{i}]: {e}")))?);
            }
            let count = items.len();
            let version = app.histories.ingest(&tenant, &user, items).await.map_err(ApiError::internal)?;
            Ok(json_response(StatusCode::OK, &json!({"user": user, "stored": count, "history_version": version})))
        }
        Route::Item(user, id) => {
            check_user(&user)?;
            if !app.histories.delete(&tenant, &user, &id).await.map_err(ApiError::internal)? {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "item_not_found",
                    format!("user {user:?} has no item {id:?}"),
                ));
            }
            let version = app.store.history_version(&tenant, &user).await.map_err(ApiError::internal)?;
            ok(json!({"user": user, "deleted": id, "history_version": version}))
        }
        Route::Export(user) => {
            check_user(&user)?;
            let export = app.store.export_user(&tenant, &user).await.map_err(ApiError::internal)?;
            if export.history_version == 0 && export.items.is_empty() && export.kv.is_empty() {
                return Err(user_not_found(&user));
            }
            let kv: Vec<Json> = export
                .kv
                .iter()
                .map(|(plugin, key, value)| match std::str::from_utf8(value) {
                    Ok(text) => json!({"plugin": plugin, "key": key, "value": text}),
                    Err(_) => json!({"plugin": plugin, "key": key,
                        "value_hex": value.iter().map(|b| format!("{b:02x}")).collect::<String>()}),
                })
                .collect();
            ok(json!({
                "user": export.user,
                "history_version": export.history_version,
                "items": export.items.iter().map(item_to_json).collect::<Vec<_>>(),
                "kv": kv,
            }))
        }
        Route::User(user) => {
            check_user(&user)?;
            let version = app.store.history_version(&tenant, &user).await.map_err(ApiError::internal)?;
            let erased = app.histories.erase(&tenant, &user).await.map_err(ApiError::internal)?;
            if version == 0 && erased.items == 0 && erased.kv == 0 {
                return Err(user_not_found(&user));
            }
            ok(json!({"user": user, "erased": {"items": erased.items, "kv": erased.kv}}))
        }
    }
}

fn user_not_found(user: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "user_not_found", format!("no user {user:?} in this tenant"))
}

fn pipeline_json(s: &Served) -> Json {
    let p = &s.loaded.pipeline;
    json!({
        "name": p.name,
        "description": p.description,
        "file": s.file.display().to_string(),
        "fingerprint": &*s.loaded.fingerprint,
        "inputs": p.inputs.iter().map(|i| json!({
            "name": i.name, "type": i.ty.to_string(), "required": i.default.is_none()
        })).collect::<Vec<_>>(),
        "stages": p.stages.iter().map(|st| json!({
            "label": st.label.to_string(), "plugin": st.plugin.name, "version": st.plugin.version.to_string()
        })).collect::<Vec<_>>(),
    })
}

/// The pipeline's input values from a request's `input`: an object of named inputs, or a bare
/// value when the pipeline has exactly one input.
pub(super) fn inputs_from(served: &Served, input: Option<&Json>) -> Result<Vec<Value>, ApiError> {
    let p = &served.loaded.pipeline;
    let mut given = BTreeMap::new();
    match input {
        None | Some(Json::Null) => {}
        // Named inputs, unless the only input is itself given as an object.
        Some(Json::Object(map)) if p.inputs.len() != 1 || map.keys().all(|k| p.inputs.iter().any(|i| &i.name == k)) => {
            for (k, v) in map {
                let value = json_to_value(&v.to_string())
                    .map_err(|e| ApiError::bad("invalid_input", format!("input `{k}`: {e}")))?;
                given.insert(k.clone(), value);
            }
        }
        Some(other) if p.inputs.len() == 1 => {
            let value = json_to_value(&other.to_string())
                .map_err(|e| ApiError::bad("invalid_input", format!("input `{}`: {e}", p.inputs[0].name)))?;
            given.insert(p.inputs[0].name.clone(), value);
        }
        Some(other) => {
            return Err(ApiError::bad(
                "invalid_input",
                format!("`input` is an object of the pipeline's {} inputs, not {}", p.inputs.len(), json_kind(other)),
            ));
        }
    }
    bind_inputs(p, &given).map_err(|e| ApiError::bad("invalid_input", e))
}

/// A finished run with what the request needs to answer.
pub(super) struct Done {
    pub report: RunReport,
    pub tap: Arc<RunTap>,
}

/// One run a request asks for.
pub(super) struct Job<'a> {
    pub tenant: &'a str,
    pub user: &'a str,
    pub served: &'a Served,
    /// The plugins of the generation the request started on.
    pub catalog: Arc<crate::registry::Catalog>,
    pub inputs: Vec<Value>,
    pub tap: Arc<RunTap>,
    /// The request's span.
    pub cx: Option<&'a Context>,
    pub deadline: Instant,
}

/// Runs a pipeline for a tenant's user, with metrics and spans.
pub(super) async fn execute(app: &App, job: Job<'_>) -> Result<Done, ApiError> {
    let Job { tenant, user, served, catalog, inputs, tap, cx, deadline } = job;
    let history_version = app.store.history_version(tenant, user).await.map_err(ApiError::internal)?;
    let request_id = cx.map(telemetry::trace_id).unwrap_or_default();
    let request = RunRequest {
        loaded: served.loaded.clone(),
        catalog,
        tenant: tenant.to_owned(),
        user: user.to_owned(),
        inputs,
        services: app.services.clone(),
        history_version,
        request_id,
        deadline: Some(deadline),
        wrap_complete: Some(tap.wrap()),
    };
    let run_started = SystemTime::now();
    let result = app.executor.run(request).await;
    let name = &served.loaded.pipeline.name;
    let stages: &[StageReport] = match &result {
        Ok(r) => &r.stages,
        Err(f) => &f.stages,
    };
    app.metrics.stages(name, stages);
    let calls = tap.calls();
    for call in &calls {
        let outcome = if call.error.is_some() { "error" } else { "ok" };
        app.metrics.llm_calls.get_or_create(&vec![("outcome", outcome.to_owned())]).inc();
        app.metrics
            .llm_tokens
            .get_or_create(&vec![("kind", "prompt".to_owned())])
            .inc_by(u64::from(call.prompt_tokens));
        app.metrics
            .llm_tokens
            .get_or_create(&vec![("kind", "completion".to_owned())])
            .inc_by(u64::from(call.completion_tokens));
    }
    if let Some(cx) = cx {
        app.tracing.run(cx, run_started, name, stages, &calls);
    }
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    app.metrics.runs.get_or_create(&vec![("pipeline", name.clone()), ("outcome", outcome.to_owned())]).inc();
    match result {
        Ok(report) => Ok(Done { report, tap }),
        Err(failure) => {
            let (status, code) = match &*failure.error {
                crate::exec::RunError::Deadline => (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded"),
                crate::exec::RunError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
                crate::exec::RunError::PluginMissing { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "plugin_missing"),
                crate::exec::RunError::Inputs { .. } => (StatusCode::BAD_REQUEST, "invalid_input"),
                _ => (StatusCode::UNPROCESSABLE_ENTITY, "run_failed"),
            };
            let mut e = ApiError::new(status, code, failure.error.to_string());
            e.extra = Some(json!({
                "kind": failure.error.kind(),
                "stages": failure.stages.iter().map(stage_json).collect::<Vec<_>>(),
            }));
            Err(e)
        }
    }
}

pub(super) fn stage_json(s: &StageReport) -> Json {
    let error = match &s.outcome {
        Outcome::Recovered { error } | Outcome::Failed { error } => Some(error.clone()),
        _ => None,
    };
    json!({
        "stage": s.label,
        "plugin": format!("{}@{}", s.plugin, s.version),
        "outcome": s.outcome.as_str(),
        "error": error,
        "error_kind": s.error_kind,
        "started_ms": s.started.as_secs_f64() * 1e3,
        "elapsed_ms": s.elapsed.as_secs_f64() * 1e3,
    })
}

async fn run_route(
    app: &Arc<App>,
    tenant: &str,
    name: &str,
    body: serde_json::Map<String, Json>,
    finish: &mut Finish,
) -> Result<Response<Body>, ApiError> {
    only_keys(&body, &["user", "input"])?;
    let user = match body.get("user") {
        Some(Json::String(u)) => u.clone(),
        _ => return Err(ApiError::bad("invalid_body", "`user` (a string) is required")),
    };
    check_user(&user)?;
    let generation = app.reloader.current();
    let served = generation.pipelines.get(name).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "pipeline_not_found", format!("no pipeline {name:?} is served"))
    })?;
    let inputs = inputs_from(served, body.get("input"))?;
    let tap = RunTap::new(app.tracing.capture_prompts, None);
    let job = Job {
        tenant,
        user: &user,
        served,
        catalog: Arc::clone(&generation.catalog),
        inputs,
        tap,
        cx: finish.cx.as_ref(),
        deadline: finish.deadline(),
    };
    let done = execute(app, job).await?;
    let (prompt_tokens, completion_tokens) = done.tap.usage();
    let llm_ms: f64 = done.tap.calls().iter().map(|c| c.elapsed.as_secs_f64() * 1e3).sum();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "pipeline": name,
            "version": generation.version,
            "user": user,
            "output": to_json_value(&done.report.output),
            "stages": done.report.stages.iter().map(stage_json).collect::<Vec<_>>(),
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
            "elapsed_ms": done.report.elapsed.as_secs_f64() * 1e3,
            "llm_ms": llm_ms,
            "trace_id": finish.cx.as_ref().map(telemetry::trace_id),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_table_is_what_the_router_answers() {
        let mut answered = Vec::new();
        for (_, template) in ROUTES {
            let path = template.replace("{name}", "p").replace("{user}", "u%20v").replace("{id}", "i");
            let route = Route::parse(&path).unwrap_or_else(|e| panic!("{template}: {}", e.message));
            assert_eq!(route.template(), template);
            for m in route.methods() {
                answered.push((m.as_str().to_owned(), template.to_owned()));
            }
        }
        answered.sort();
        answered.dedup();
        let mut table: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        table.sort();
        assert_eq!(answered, table);
        assert_eq!(Route::parse("/v1/users/a%2Fb/export").unwrap(), Route::Export("a/b".into()));
        for missing in ["/", "/v1", "/v1/users/", "/v1/pipelines/x", "/v2/users", "/healthz/x", "//healthz"] {
            assert_eq!(Route::parse(missing).unwrap_err().code, "not_found", "{missing}");
        }
    }
}
