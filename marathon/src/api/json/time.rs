//! Versions as Marathon prints them: ISO-8601 UTC timestamps with
//! milliseconds (`2017-05-08T15:29:26.123Z`); the planner's `Version` is
//! milliseconds since the Unix epoch (the calendar is `agora_model::utc`).
use agora_marathon_planner::Version;

/// `Version(ms)` → `YYYY-MM-DDTHH:MM:SS.mmmZ` (clamped to year 9999).
pub fn format_version(v: Version) -> String {
    agora_model::utc::format_ms(v.0)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z`; `None` when it is not such a
/// timestamp.
pub fn parse_version(text: &str) -> Option<Version> {
    agora_model::utc::parse_ms(text).map(Version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_utc_timestamps_with_milliseconds() {
        let v = parse_version("2017-05-08T15:29:26.123Z").unwrap();
        assert_eq!(v.0, 1_494_257_366_123);
        assert_eq!(format_version(v), "2017-05-08T15:29:26.123Z");
        assert_eq!(parse_version("2017-05-08"), None);
    }
}
