//! Timestamps as RFC 3339 strings in UTC, the one format used in manifests and the audit log.

use ::time::OffsetDateTime;
use ::time::format_description::well_known::Rfc3339;

/// Now, as an RFC 3339 UTC timestamp with millisecond precision (`2026-11-27T09:01:03.123Z`).
pub fn now_rfc3339() -> String {
    format_rfc3339(OffsetDateTime::now_utc())
}

/// Formats a time as RFC 3339 in UTC with millisecond precision.
pub fn format_rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(::time::UtcOffset::UTC);
    let t = t
        .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Parses an RFC 3339 timestamp.
pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let s = now_rfc3339();
        assert!(s.ends_with('Z'), "{s}");
        let t = parse_rfc3339(&s).unwrap();
        assert_eq!(format_rfc3339(t), s);
    }
}
