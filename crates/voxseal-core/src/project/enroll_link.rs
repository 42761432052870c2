//! The broker's URL and the enrollment links that name it.
//!
//! An enrollment link (`voxseal://enroll?broker=<url>&code=<code>`) tells the app where to fetch
//! the lead-signed project config and redeem a one-time code. Both are parsed as URLs (with the
//! `url` crate, so escapes and odd hosts are handled the way browsers do) and a broker is compared
//! by exact origin (scheme, host, port): `http://localhost.evil.com` is not `http://localhost`.

use url::{Host, Url};

/// Why a broker URL or an enrollment link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// Not a URL at all.
    #[error("{0:?} is not a URL (expected e.g. https://broker.example.com)")]
    NotAUrl(String),
    /// Plain http to a host that is not this machine, or another scheme.
    #[error(
        "the broker URL {0} must use https:// (plain http only for a local stack on 127.0.0.1, [::1] or localhost)"
    )]
    Insecure(String),
    /// User names, passwords, queries or fragments have no place in a broker URL.
    #[error("the broker URL {0} must not carry a user name, password, query or fragment")]
    Extra(String),
    /// The link is not a `voxseal://enroll` link, or lacks its code or broker.
    #[error("{0}")]
    BadLink(String),
}

/// A validated broker URL: https, or http to the loopback host only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl(Url);

impl BrokerUrl {
    /// Parses and checks a broker URL.
    pub fn parse(text: &str) -> Result<Self, LinkError> {
        let url = Url::parse(text.trim()).map_err(|_| LinkError::NotAUrl(text.to_owned()))?;
        let loopback = match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => return Err(LinkError::NotAUrl(text.to_owned())),
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(LinkError::Insecure(text.to_owned())),
        }
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(LinkError::Extra(text.to_owned()));
        }
        Ok(Self(url))
    }

    /// True when both name the same origin (scheme, host and port, compared exactly).
    pub fn same_origin(&self, other: &BrokerUrl) -> bool {
        self.0.origin() == other.0.origin()
    }

    /// The URL of an endpoint below the broker, e.g. `v1/project`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}/{path}", self.as_str().trim_end_matches('/'))
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str().trim_end_matches('/'))
    }
}

/// A parsed enrollment link or bare code.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollLink {
    /// The broker the link names (or the one given separately for a bare code).
    pub broker: BrokerUrl,
    /// The one-time enrollment code.
    pub code: String,
}

impl std::fmt::Debug for EnrollLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollLink")
            .field("broker", &self.broker)
            .finish_non_exhaustive()
    }
}

impl EnrollLink {
    /// Parses `voxseal://enroll?broker=<url>&code=<code>`, or a bare code with `broker` (the
    /// installed project's broker, or one given on the command line). When `broker` is given
    /// and the link names another origin, the link is refused: a link is honoured only for the
    /// broker it is checked against.
    pub fn parse(input: &str, broker: Option<&BrokerUrl>) -> Result<Self, LinkError> {
        let input = input.trim();
        if !input.to_ascii_lowercase().starts_with("voxseal:") {
            let code = check_code(input)?;
            let broker = broker.cloned().ok_or_else(|| {
                LinkError::BadLink(
                    "a bare code needs the broker's URL: paste the whole voxseal://enroll link"
                        .into(),
                )
            })?;
            return Ok(Self { broker, code });
        }
        if !escapes_are_valid(input) {
            return Err(LinkError::BadLink(
                "the enrollment link has a bad %-escape: copy the whole link again".into(),
            ));
        }
        let url = Url::parse(input).map_err(|_| LinkError::BadLink(bad_link()))?;
        if url.host_str() != Some("enroll") {
            return Err(LinkError::BadLink(bad_link()));
        }
        let (mut code, mut named) = (None, None);
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "code" => code = Some(v.into_owned()),
                "broker" => named = Some(BrokerUrl::parse(&v)?),
                _ => {}
            }
        }
        let code = check_code(&code.ok_or_else(|| {
            LinkError::BadLink(
                "the enrollment link has no code: ask your lead for a new link".into(),
            )
        })?)?;
        let named = named.ok_or_else(|| {
            LinkError::BadLink(
                "the enrollment link names no broker: ask your lead for a new link".into(),
            )
        })?;
        if let Some(expected) = broker
            && !expected.same_origin(&named)
        {
            return Err(LinkError::BadLink(format!(
                "this link is for the broker {named}, but this project's broker is {expected}: use a link from your project lead"
            )));
        }
        Ok(Self {
            broker: named,
            code,
        })
    }
}

impl std::fmt::Display for EnrollLink {
    /// The `voxseal://enroll?broker=...&code=...` link, query escaped.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("broker", &self.broker.to_string())
            .append_pair("code", &self.code)
            .finish();
        write!(f, "voxseal://enroll?{query}")
    }
}

fn bad_link() -> String {
    "not an enrollment link: expected voxseal://enroll?broker=...&code=... or a code".into()
}

/// Every `%` starts a two-digit hex escape (the URL parser would keep a bad one as text).
fn escapes_are_valid(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// Codes are letters, digits, `-` and `_` (`vxe_<lookup>_<secret>`, or the demo's).
fn check_code(code: &str) -> Result<String, LinkError> {
    let code = code.trim();
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if code.is_empty() || code.len() > 128 || !code.bytes().all(allowed) {
        return Err(LinkError::BadLink(
            "the enrollment code is empty or malformed: copy it again from your lead's message"
                .into(),
        ));
    }
    Ok(code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> BrokerUrl {
        BrokerUrl::parse(s).unwrap()
    }

    #[test]
    fn only_https_or_loopback_http() {
        for ok in [
            "https://b.example.com",
            "https://b.example.com:8443/",
            "http://127.0.0.1:8787",
            "http://[::1]:8787",
            "http://localhost:8787",
        ] {
            BrokerUrl::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "http://localhost.evil.com",
            "http://127.0.0.1.evil.com",
            "http://evil.com/127.0.0.1",
            "http://evil.com#@127.0.0.1",
            "http://localhost@evil.com",
            "ftp://b.example.com",
            "https://user:pw@b.example.com",
            "https://b.example.com/?x=1",
            "b.example.com",
            "",
        ] {
            assert!(BrokerUrl::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn origins_compare_exactly() {
        assert!(url("https://b.example.com").same_origin(&url("https://B.example.com:443/")));
        assert!(!url("https://b.example.com").same_origin(&url("https://b.example.com.evil.com")));
        assert!(!url("http://127.0.0.1:1").same_origin(&url("http://127.0.0.1:2")));
        assert!(!url("http://localhost:1").same_origin(&url("http://127.0.0.1:1")));
    }

    #[test]
    fn links_parse_with_escapes_and_are_bound_to_the_broker() {
        let l = EnrollLink::parse(
            "voxseal://enroll?broker=https%3A%2F%2Fb.example.com%3A8443&code=ABCD-EFGH",
            None,
        )
        .unwrap();
        assert_eq!(l.code, "ABCD-EFGH");
        assert_eq!(l.broker.to_string(), "https://b.example.com:8443");
        let installed = url("https://b.example.com:8443");
        assert!(
            EnrollLink::parse(
                "voxseal://enroll?broker=https://b.example.com:8443&code=x",
                Some(&installed)
            )
            .is_ok()
        );
        let other = EnrollLink::parse(
            "voxseal://enroll?broker=http://localhost.evil.com&code=x",
            Some(&installed),
        );
        assert!(other.is_err());
        let elsewhere = EnrollLink::parse(
            "voxseal://enroll?broker=https://other.example.com&code=x",
            Some(&installed),
        )
        .unwrap_err();
        assert!(
            elsewhere.to_string().contains("this project's broker is"),
            "{elsewhere}"
        );
        assert_eq!(
            EnrollLink::parse(&l.to_string(), None).unwrap(),
            l,
            "round trip"
        );
        let bare = EnrollLink::parse(" ABCD ", Some(&installed)).unwrap();
        assert_eq!((bare.code.as_str(), bare.broker), ("ABCD", installed));
        assert!(EnrollLink::parse("ABCD", None).is_err());
        for bad in [
            "voxseal://enroll?broker=https://b.example.com",
            "voxseal://enroll?code=x",
            "voxseal://other?broker=https://b.example.com&code=x",
            "voxseal://enroll?broker=http://evil.com&code=x",
            "voxseal://enroll?broker=https://b.example.com&code=a%20b",
            "voxseal://enroll?broker=https://b.example.com&code=%zz",
            "voxseal://enroll?broker=https://b.example.com&code=a%2",
        ] {
            assert!(EnrollLink::parse(bad, None).is_err(), "{bad} was accepted");
        }
    }
}
