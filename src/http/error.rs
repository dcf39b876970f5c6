//! Protocol errors and the status each one is answered with.
//!
//! Every `HttpError` ends the connection: after a framing or limit error the
//! server cannot know where the next request would start.

use aerie_api::Status;

/// A request the server refuses before (or while) reading it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Malformed syntax or a smuggling pattern.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The request line is longer than `max_request_line`.
    #[error("request line too long")]
    UriTooLong,
    /// The head is larger than `max_header_bytes` or has more than
    /// `max_headers` fields.
    #[error("request header fields too large: {0}")]
    HeadersTooLarge(&'static str),
    /// A method in `length_required` came without Content-Length or chunked.
    #[error("length required")]
    LengthRequired,
    /// The body is larger than the listener's `max_body_size`.
    #[error("request body too large")]
    PayloadTooLarge,
    /// A transfer coding the server does not implement.
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
    /// Not HTTP/1.0 or HTTP/1.1.
    #[error("HTTP version not supported")]
    VersionNotSupported,
    /// An `Expect` other than `100-continue`.
    #[error("expectation failed")]
    ExpectationFailed,
    /// The client was too slow sending the head or the body.
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

impl HttpError {
    /// The status this error is answered with.
    pub fn status(&self) -> Status {
        match self {
            HttpError::BadRequest(_) => Status::BAD_REQUEST,
            HttpError::UriTooLong => Status::URI_TOO_LONG,
            HttpError::HeadersTooLarge(_) => Status::HEADERS_TOO_LARGE,
            HttpError::LengthRequired => Status::LENGTH_REQUIRED,
            HttpError::PayloadTooLarge => Status::PAYLOAD_TOO_LARGE,
            HttpError::NotImplemented(_) => Status::NOT_IMPLEMENTED,
            HttpError::VersionNotSupported => Status::VERSION_NOT_SUPPORTED,
            HttpError::ExpectationFailed => Status::EXPECTATION_FAILED,
            HttpError::Timeout(_) => Status::REQUEST_TIMEOUT,
        }
    }

    /// A one-line plain-text body for the error response.
    pub fn body(&self) -> String {
        format!("{}\n", self)
    }
}
