//! SIP request methods.

use std::fmt;
use std::str::FromStr;

use super::ParseError;
use super::text::is_token;

/// A request method (RFC 3261 §7.1 plus the common extensions).
///
/// Methods are case-sensitive (RFC 3261 §7.1), so `invite` is an extension
/// method, not [`Method::Invite`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// Starts a session.
    Invite,
    /// Confirms a final response to an INVITE.
    Ack,
    /// Ends a session.
    Bye,
    /// Cancels a pending INVITE.
    Cancel,
    /// Binds a contact address to an address of record.
    Register,
    /// Queries capabilities.
    Options,
    /// Mid-session information (RFC 6086).
    Info,
    /// Session update without a new INVITE (RFC 3311).
    Update,
    /// Reliable provisional response acknowledgement (RFC 3262).
    Prack,
    /// Event subscription (RFC 6665).
    Subscribe,
    /// Event notification (RFC 6665).
    Notify,
    /// Call transfer (RFC 3515).
    Refer,
    /// Instant message (RFC 3428).
    Message,
    /// Event state publication (RFC 3903).
    Publish,
    /// Any other method token.
    Extension(String),
}

impl Method {
    /// The method as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }
}

impl FromStr for Method {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other if is_token(other) => Method::Extension(other.to_owned()),
            _ => return Err(ParseError::BadMethod),
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_extension() {
        assert_eq!("INVITE".parse::<Method>(), Ok(Method::Invite));
        assert_eq!("invite".parse::<Method>(), Ok(Method::Extension("invite".into())));
        assert_eq!("NEWMETHOD".parse::<Method>().unwrap().as_str(), "NEWMETHOD");
        assert_eq!("IN VITE".parse::<Method>(), Err(ParseError::BadMethod));
        assert_eq!("".parse::<Method>(), Err(ParseError::BadMethod));
    }
}
