//! Swift's standard answers, shared by the object, container and account
//! services: the HTML status pages swob sends, 507 for a device, plain-text
//! errors, the `X-Timestamp` rule, and the method check (405, OPTIONS)
//! every storage server does first.

use crate::Timestamp;
use aerie_api::{Body, Method, RequestHead, Response, Status};
use std::borrow::Cow;

/// Swift's default body for a status, if it has one.
pub fn status_page(status: Status, drive: Option<&str>) -> Option<String> {
    let explanation = match status.0 {
        202 => "The request is accepted for processing.",
        400 => "The server could not comply with the request since it is either malformed or otherwise incorrect.",
        403 => "Access was denied to this resource.",
        404 => "The resource could not be found.",
        405 => "The method is not allowed for this resource.",
        408 => "The server has waited too long for the request to be sent by the client.",
        409 => "There was a conflict when trying to complete your request.",
        411 => "Content-Length header required.",
        412 => "A precondition for this request was not met.",
        413 => "The body of your request was too large for this server.",
        416 => "The Range requested is not available.",
        422 => "Unable to process the contained instructions",
        499 => "The client was disconnected during request.",
        500 => "The server has either erred or is incapable of performing the requested operation.",
        501 => "The requested method is not implemented by this server.",
        503 => "The server is currently unavailable. Please try again at a later time.",
        507 => {
            return Some(format!(
                "<html><h1>Insufficient Storage</h1><p>There was not enough space to save the resource. Drive: {}</p></html>",
                drive.unwrap_or("unknown")
            ))
        }
        _ => return None,
    };
    Some(format!("<html><h1>{}</h1><p>{explanation}</p></html>", status.reason()))
}

/// A response with Swift's HTML page for the status (if it has one).
pub fn page(status: Status) -> Response {
    page_with(status, None)
}

pub fn page_with(status: Status, drive: Option<&str>) -> Response {
    match status_page(status, drive) {
        Some(body) => Response::new(status)
            .with_header("Content-Type", &b"text/html; charset=UTF-8"[..])
            .with_body(Body::Bytes(body.into_bytes().into())),
        None => Response::new(status),
    }
}

/// 507 for a device.
pub fn insufficient_storage(device: &str) -> Response {
    page_with(Status::INSUFFICIENT_STORAGE, Some(device))
}

/// A plain-text error, as Swift sends for validation failures.
pub fn text(status: Status, msg: impl Into<Cow<'static, str>>) -> Response {
    Response::text(status, msg)
}

/// `X-Timestamp`, required by every write (§2.3): 400 when missing or
/// invalid.
pub fn x_timestamp(head: &RequestHead) -> Result<Timestamp, Response> {
    match head.header("x-timestamp") {
        None => Err(text(Status::BAD_REQUEST, "Missing X-Timestamp header")),
        Some(v) => Timestamp::parse_bytes(v).map_err(|_| text(Status::BAD_REQUEST, "Invalid X-Timestamp header")),
    }
}

/// The verbs check every storage server does first: 405 (with `Allow`) for
/// a method not in `methods`, the `OPTIONS` answer naming them and the
/// server (`object-server`, …); None for a request to serve.
pub fn check_method(head: &RequestHead, methods: &[&str], server: &str) -> Option<Response> {
    let method = head.method();
    if !methods.contains(&method.as_str()) {
        return Some(page(Status::METHOD_NOT_ALLOWED).with_header("Allow", methods.join(", ").into_bytes()));
    }
    if *method == Method::Options {
        return Some(
            Response::new(Status::OK)
                .with_header("Allow", methods.join(", ").into_bytes())
                .with_header("Server", format!("{server}/aerie-{}", env!("CARGO_PKG_VERSION")).into_bytes()),
        );
    }
    None
}
