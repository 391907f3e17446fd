//! The rest: C escapes, subscription lists, environment variables, UTF-16.

use super::{bad, text, Function};
use crate::ops::exactly_equal;
use crate::value::Value;
use crate::EvalError;

pub(super) const FUNCTIONS: &[Function] = &[
    Function {
        name: "unescape",
        min_args: 1,
        max_args: 1,
        call: |a| unescape(text("unescape", &a[0])?).map(Value::Str),
    },
    Function { name: "contains_topic", min_args: 2, max_args: 3, call: |a| contains_topic(a, |f, t| f == t) },
    Function {
        name: "contains_topic_match",
        min_args: 2,
        max_args: 3,
        call: |a| contains_topic(a, weir_types::topic::matches),
    },
    Function { name: "getenv", min_args: 1, max_args: 1, call: getenv },
    Function { name: "str_utf16_le", min_args: 1, max_args: 1, call: str_utf16_le },
];

/// C escapes (`\n \t \r \b \f \v \a \' \" \\ \?`) and `\x` followed by as many hex digits as
/// there are (one code point); any other escape is an error, as in EMQX.
fn unescape(s: &str) -> Result<String, EvalError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = match chars.next() {
            Some('n') => '\n',
            Some('t') => '\t',
            Some('r') => '\r',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('v') => '\u{b}',
            Some('a') => '\u{7}',
            Some(c @ ('\'' | '"' | '\\' | '?')) => c,
            Some('x') => {
                let mut hex = String::new();
                while let Some(h) = chars.peek().filter(|h| h.is_ascii_hexdigit()) {
                    hex.push(*h);
                    chars.next();
                }
                u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| EvalError::BadArgument(format!("unescape(): bad \\x escape '\\x{hex}'")))?
            }
            other => {
                return Err(EvalError::BadArgument(format!(
                    "unescape(): unknown escape '\\{}'",
                    other.map(String::from).unwrap_or_default()
                )))
            }
        };
        out.push(escaped);
    }
    Ok(out)
}

/// `contains_topic(filters, topic[, qos])`: whether a list of `{"topic", "qos"}` maps (as in
/// subscription events) has an entry whose filter `matches` the topic, with that QoS if given.
fn contains_topic(a: &[Value], matches: fn(&str, &str) -> bool) -> Result<Value, EvalError> {
    let Value::List(filters) = &a[0] else { return Err(bad("contains_topic", &a[0])) };
    let topic = text("contains_topic", &a[1])?;
    let found = filters.iter().any(|f| {
        let Value::Map(m) = f else { return false };
        let filter_ok = matches!(m.get("topic"), Some(Value::Str(filter)) if matches(filter, topic));
        let qos_ok = a.get(2).is_none_or(|q| m.get("qos").is_some_and(|mq| exactly_equal(mq, q)));
        filter_ok && qos_ok
    });
    Ok(Value::Bool(found))
}

/// `getenv('X')`: the variable `WEIRVAR_X`, or EMQX's `EMQXVAR_X` so that rules written for
/// EMQX keep working; `undefined` if neither is set.
fn getenv(a: &[Value]) -> Result<Value, EvalError> {
    let name = text("getenv", &a[0])?;
    Ok(["WEIRVAR_", "EMQXVAR_"]
        .iter()
        .find_map(|prefix| std::env::var(format!("{prefix}{name}")).ok())
        .map_or(Value::Undefined, Value::Str))
}

fn str_utf16_le(a: &[Value]) -> Result<Value, EvalError> {
    let s = a[0].to_text()?;
    let bytes: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    Ok(Value::from_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    use crate::functions::call;
    use crate::value::Value;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    fn subs(json: &str) -> Value {
        Value::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn unescape_c_escapes() {
        assert_eq!(call("unescape", &[s("a\\nb\\t\\\"c\\\\")]).unwrap(), s("a\nb\t\"c\\"));
        assert_eq!(call("unescape", &[s("\\x41\\x4E2D")]).unwrap(), s("A\u{4E2D}"), "greedy \\x");
        assert!(call("unescape", &[s("\\q")]).is_err());
        // The spec's example: split on a real newline.
        let parts = call("split", &[s("a\nb"), call("unescape", &[s("\\n")]).unwrap()]).unwrap();
        assert_eq!(parts, Value::List(vec![s("a"), s("b")]));
    }

    #[test]
    fn topic_lists() {
        let filters = subs(r#"[{"topic":"t/#","qos":1},{"topic":"a/b","qos":0}]"#);
        assert_eq!(call("contains_topic", &[filters.clone(), s("a/b")]).unwrap(), Value::Bool(true));
        assert_eq!(call("contains_topic", &[filters.clone(), s("t/x")]).unwrap(), Value::Bool(false), "exact");
        assert_eq!(call("contains_topic_match", &[filters.clone(), s("t/x")]).unwrap(), Value::Bool(true));
        assert_eq!(
            call("contains_topic_match", &[filters.clone(), s("t/x"), Value::Int(0)]).unwrap(),
            Value::Bool(false)
        );
        assert_eq!(call("contains_topic", &[filters, s("a/b"), Value::Int(0)]).unwrap(), Value::Bool(true));
    }

    #[test]
    fn environment_and_utf16() {
        assert_eq!(call("getenv", &[s("WEIR_TEST_SURELY_UNSET")]).unwrap(), Value::Undefined);
        // A name no other test reads, set once: EMQX's prefix works as well as Weir's.
        std::env::set_var("EMQXVAR_WEIR_GETENV_TEST", "from-emqx-style");
        assert_eq!(call("getenv", &[s("WEIR_GETENV_TEST")]).unwrap(), s("from-emqx-style"));
        assert_eq!(call("str_utf16_le", &[s("A")]).unwrap(), Value::Str("A\u{0}".into()));
    }
}
