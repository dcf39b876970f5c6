//! Why a connection ended, as the server counts it (`/metrics`
//! `aerie_connections_closed_total{reason=…}`).

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// An exchange ended without keep-alive (asked for by the client or the
    /// server, HTTP/1.0, or an unread body too large to discard).
    Done,
    /// The client closed the connection between requests.
    ClientClosed,
    /// The client closed the connection in the middle of a request.
    ClientGone,
    /// Nothing arrived within `keepalive_timeout` (or `header_timeout`
    /// before a first request).
    IdleTimeout,
    /// A request head did not complete within `header_timeout`.
    HeadTimeout,
    /// A request body stalled for `body_timeout`.
    BodyTimeout,
    /// The client stopped reading the response for `write_timeout`.
    WriteTimeout,
    /// The request broke the protocol (answered with a 4xx/5xx first).
    BadRequest,
    /// Reading the socket failed.
    ReadError,
    /// Writing the socket failed.
    WriteError,
    /// The response could not be completed (its body failed mid-stream or
    /// did not match its length).
    ResponseAborted,
    /// The worker is stopping.
    Draining,
}

impl CloseReason {
    /// Every reason, in counter order.
    pub const ALL: [CloseReason; 12] = [
        CloseReason::Done,
        CloseReason::ClientClosed,
        CloseReason::ClientGone,
        CloseReason::IdleTimeout,
        CloseReason::HeadTimeout,
        CloseReason::BodyTimeout,
        CloseReason::WriteTimeout,
        CloseReason::BadRequest,
        CloseReason::ReadError,
        CloseReason::WriteError,
        CloseReason::ResponseAborted,
        CloseReason::Draining,
    ];

    /// Its counter's index.
    pub fn index(self) -> usize {
        CloseReason::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::Done => "done",
            CloseReason::ClientClosed => "client_closed",
            CloseReason::ClientGone => "client_gone",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::HeadTimeout => "head_timeout",
            CloseReason::BodyTimeout => "body_timeout",
            CloseReason::WriteTimeout => "write_timeout",
            CloseReason::BadRequest => "bad_request",
            CloseReason::ReadError => "read_error",
            CloseReason::WriteError => "write_error",
            CloseReason::ResponseAborted => "response_aborted",
            CloseReason::Draining => "draining",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CloseReason;

    #[test]
    fn every_reason_has_its_own_counter_within_the_scoreboard() {
        for (i, r) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        assert!(CloseReason::ALL.len() <= crate::scoreboard::CLOSE_REASONS);
    }
}
