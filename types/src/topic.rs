//! Topic names and filters as MQTT 5.0 section 4.7 defines them: validation, `$share`/`$queue`
//! parsing, and matching a filter against a topic name.

/// Why a topic name or filter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// An empty topic or filter.
    #[error("topic is empty")]
    Empty,
    /// A NUL character, which MQTT forbids in topics.
    #[error("topic contains a NUL character")]
    Nul,
    /// `+` or `#` in a topic name (they belong in filters only).
    #[error("wildcards are not allowed in a topic name")]
    WildcardInName,
    /// `#` that is not a whole level, or not the last one.
    #[error("`#` must be the last level and stand alone")]
    MisplacedMultiWildcard,
    /// `+` that is not a whole level.
    #[error("`+` must occupy a whole level")]
    MisplacedSingleWildcard,
    /// `$share/` without a group, or with a wildcard in it.
    #[error("shared subscription needs `$share/<group>/<filter>` with a non-empty group")]
    BadShare,
    /// More levels than [`MAX_TOPIC_LEVELS`].
    #[error("topic has more than {0} levels")]
    TooManyLevels(usize),
}

/// Levels allowed in one topic (EMQX `max_topic_levels`).
pub const MAX_TOPIC_LEVELS: usize = 128;

/// Validates a PUBLISH topic name; returns its levels (`a/b/c` has 3), which the broker's own
/// `max_topic_levels` is checked against without a second pass.
pub fn validate_name(topic: &str) -> Result<usize, TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    // One pass over the bytes: this runs for every PUBLISH.
    let mut separators = 0;
    for b in topic.bytes() {
        match b {
            b'/' => separators += 1,
            b'+' | b'#' => return Err(TopicError::WildcardInName),
            0 => return Err(TopicError::Nul),
            _ => {}
        }
    }
    if separators >= MAX_TOPIC_LEVELS {
        return Err(TopicError::TooManyLevels(MAX_TOPIC_LEVELS));
    }
    Ok(separators + 1)
}

/// Validates a subscription filter (after any `$share/<group>/` prefix was removed).
pub fn validate_filter(filter: &str) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    if filter.contains('\0') {
        return Err(TopicError::Nul);
    }
    let levels: Vec<&str> = filter.split('/').collect();
    if levels.len() > MAX_TOPIC_LEVELS {
        return Err(TopicError::TooManyLevels(MAX_TOPIC_LEVELS));
    }
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i != levels.len() - 1) {
            return Err(TopicError::MisplacedMultiWildcard);
        }
        if level.contains('+') && *level != "+" {
            return Err(TopicError::MisplacedSingleWildcard);
        }
    }
    Ok(())
}

/// A subscription filter as the client wrote it, split into its shared group (if any) and the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFilter<'a> {
    /// The shared-subscription group (`$queue` for `$queue/...`), if any.
    pub group: Option<&'a str>,
    /// The topic filter itself.
    pub filter: &'a str,
}

/// Splits `$share/<group>/<filter>` and `$queue/<filter>` (EMQX's alias for group `$queue`).
pub fn parse_subscription(raw: &str) -> Result<ParsedFilter<'_>, TopicError> {
    let parsed = if let Some(rest) = raw.strip_prefix("$share/") {
        let (group, filter) = rest.split_once('/').ok_or(TopicError::BadShare)?;
        if group.is_empty() || group.contains(['+', '#']) {
            return Err(TopicError::BadShare);
        }
        ParsedFilter { group: Some(group), filter }
    } else if let Some(filter) = raw.strip_prefix("$queue/") {
        ParsedFilter { group: Some("$queue"), filter }
    } else {
        ParsedFilter { group: None, filter: raw }
    };
    validate_filter(parsed.filter)?;
    Ok(parsed)
}

/// Whether `filter` matches `topic`: `+` one level, `#` the rest (and the parent level); a
/// filter starting with a wildcard never matches a topic starting with `$`.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate_name("a/b"), Ok(2));
        assert!(validate_name("/").is_ok());
        assert_eq!(validate_name(""), Err(TopicError::Empty));
        assert_eq!(validate_name("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(validate_name("a/#"), Err(TopicError::WildcardInName));
    }

    #[test]
    fn filters() {
        for ok in ["#", "+", "a/+/c", "a/#", "+/+", "/", "sport/tennis/#"] {
            assert!(validate_filter(ok).is_ok(), "{ok}");
        }
        assert_eq!(validate_filter("a/#/c"), Err(TopicError::MisplacedMultiWildcard));
        assert_eq!(validate_filter("a#"), Err(TopicError::MisplacedMultiWildcard));
        assert_eq!(validate_filter("a/b+"), Err(TopicError::MisplacedSingleWildcard));
    }

    #[test]
    fn shares() {
        let p = parse_subscription("$share/g1/a/+").unwrap();
        assert_eq!(p, ParsedFilter { group: Some("g1"), filter: "a/+" });
        let q = parse_subscription("$queue/a").unwrap();
        assert_eq!(q.group, Some("$queue"));
        assert_eq!(parse_subscription("$share/g1"), Err(TopicError::BadShare));
        assert_eq!(parse_subscription("$share//a"), Err(TopicError::BadShare));
    }

    #[test]
    fn matching() {
        assert!(matches("a/+/c", "a/b/c"));
        assert!(matches("a/#", "a"));
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("#", "a/b"));
        assert!(!matches("a/+", "a/b/c"));
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("+/x", "$SYS/x"));
        assert!(matches("$SYS/#", "$SYS/x"));
        assert!(matches("+/+", "/x"));
    }
}
