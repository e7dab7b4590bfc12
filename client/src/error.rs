//! The client's error type: a server `Status`, a transport failure, or an undecodable body.

use caravan_schemas::Status;

/// Everything a request through [`crate::HttpClient`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error `Status` (boxed: it is large).
    #[error("{} ({}): {}", .0.reason, .0.code, .0.message)]
    Api(Box<Status>),
    /// The request did not complete: connection refused, timeout, broken stream.
    #[error("request to {address} failed")]
    Http {
        /// The server address the request was sent to.
        address: String,
        #[source]
        source: reqwest::Error,
    },
    /// The response body was not what the API promises.
    #[error("failed to decode response: {0}")]
    Decode(#[source] serde_json::Error),
    /// A client-side precondition failed before any request was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl From<Status> for Error {
    fn from(status: Status) -> Error {
        Error::Api(Box::new(status))
    }
}

impl Error {
    /// The server's `Status`, if the server answered with an error.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::Api(status) => Some(status),
            _ => None,
        }
    }

    /// The HTTP status code of a server error, if this is one.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Api(status) => Some(status.code),
            _ => None,
        }
    }

    /// Whether the server answered 404 Not Found.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// Whether the server answered 409 Conflict or AlreadyExists.
    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }

    /// Whether a watch's resource version is too old (410 Gone / Expired): the caller re-lists.
    pub fn is_expired(&self) -> bool {
        self.code() == Some(410)
    }

    /// Whether no server could be reached at all (every address refused or timed out).
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Http { source, .. } if source.is_connect() || source.is_timeout())
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
