//! Error messages in kubectl's words: `Error from server (NotFound): …`, refused connections.

use caravan_client::Error;

/// Marks a failure whose details were already printed: the binary only exits 1.
#[derive(Debug, thiserror::Error)]
#[error("{0} error(s) reported")]
pub struct Reported(pub usize);

/// The message to print for a command's error; `None` when it was already reported.
pub fn render(err: &anyhow::Error) -> Option<String> {
    if err.downcast_ref::<Reported>().is_some() {
        return None;
    }
    if let Some(client) = err.chain().find_map(|e| e.downcast_ref::<Error>()) {
        return Some(client_error(client));
    }
    Some(format!("error: {err:#}"))
}

/// Whether the error means no server could be reached, so further requests are pointless.
pub fn is_unreachable(err: &anyhow::Error) -> bool {
    err.chain()
        .find_map(|e| e.downcast_ref::<Error>())
        .is_some_and(Error::is_connect)
}

/// One client error as kubectl prints it.
pub fn client_error(err: &Error) -> String {
    match err {
        Error::Api(status) => {
            let mut message = status.message.clone();
            if message.is_empty()
                && let Some(details) = &status.details
            {
                let causes: Vec<String> = details
                    .causes
                    .iter()
                    .map(|c| format!("{}: {}", c.field, c.message))
                    .collect();
                message = causes.join(", ");
            }
            if status.reason.is_empty() {
                format!("Error from server: {message}")
            } else {
                format!("Error from server ({}): {message}", status.reason)
            }
        }
        Error::Http { address, source } => {
            let host = address
                .split_once("://")
                .map_or(address.as_str(), |(_, rest)| rest);
            if source.is_connect() && !source.is_timeout() {
                format!(
                    "The connection to the server {host} was refused - did you specify the right host or port?"
                )
            } else if source.is_timeout() {
                format!("Unable to connect to the server {host}: timed out")
            } else {
                format!("Unable to connect to the server {host}: {}", chain(source))
            }
        }
        Error::Decode(e) => format!("error: failed to decode the server's response: {e}"),
        Error::InvalidRequest(message) => format!("error: {message}"),
    }
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        parts.push(e.to_string());
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use caravan_schemas::Status;

    #[test]
    fn server_errors_use_kubectl_wording() {
        let err = Error::from(Status::failure(
            404,
            "NotFound",
            "jobs.caravan.dev \"x\" not found",
        ));
        assert_eq!(
            client_error(&err),
            "Error from server (NotFound): jobs.caravan.dev \"x\" not found"
        );
        let wrapped = anyhow::Error::new(err).context("while getting");
        assert_eq!(
            render(&wrapped).unwrap(),
            "Error from server (NotFound): jobs.caravan.dev \"x\" not found"
        );
        assert!(render(&Reported(2).into()).is_none());
    }
}
