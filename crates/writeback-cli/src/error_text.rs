//! One line of text for an error and its causes, as an operator reads it.
//!
//! The crates' error types print their cause inside their own message ("cloud: authentication
//! against … failed: …") *and* hand it out as `source()`, so that logs that show only the top
//! message still say what went wrong. anyhow's `{:#}` walks the whole chain, which then printed
//! every such message twice. Here a cause is left out when the text so far already says it.

/// `outer: inner: innermost`, each distinct message once.
pub fn render(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if message.is_empty() || text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::render;

    #[derive(Debug, thiserror::Error)]
    #[error("authentication against https://login.example/token failed: AADSTS7000215: Invalid client secret")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("cloud: {0}")]
        Cloud(#[from] Inner),
    }

    #[test]
    fn a_cause_already_in_its_wrapper_message_is_printed_once() {
        let error = anyhow::Error::from(Outer::from(Inner)).context("reading the cloud");
        assert_eq!(
            render(&error),
            "reading the cloud: cloud: authentication against https://login.example/token failed: \
             AADSTS7000215: Invalid client secret"
        );
        // What `{:#}` gave before: the same sentence twice.
        assert_eq!(format!("{error:#}").matches("AADSTS7000215").count(), 2);
    }

    #[test]
    fn causes_not_in_the_message_are_kept_in_order() {
        let error = anyhow::anyhow!("connection refused")
            .context("cannot reach the DC")
            .context("ad check");
        assert_eq!(
            render(&error),
            "ad check: cannot reach the DC: connection refused"
        );
    }
}
