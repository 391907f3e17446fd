//! Regular expressions: `regex_match` searches (not anchored), `regex_replace` replaces every
//! match with Erlang's replacement syntax (`&` the match, `\N` a group), `regex_extract` gives
//! the groups of the first match. Compiled expressions are cached per thread.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::Regex;

use super::{text, within_bound, Function};
use crate::value::Value;
use crate::EvalError;

pub(super) const FUNCTIONS: &[Function] = &[
    Function {
        name: "regex_match",
        min_args: 2,
        max_args: 2,
        call: |a| Ok(Value::Bool(compiled(text("regex_match", &a[1])?)?.is_match(text("regex_match", &a[0])?))),
    },
    Function { name: "regex_replace", min_args: 3, max_args: 3, call: regex_replace },
    Function { name: "regex_extract", min_args: 2, max_args: 2, call: regex_extract },
];

/// Distinct expressions kept compiled per thread; rules use few, and constant ones.
const CACHE: usize = 256;

thread_local! {
    static COMPILED: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

fn compiled(pattern: &str) -> Result<Regex, EvalError> {
    COMPILED.with(|cache| {
        if let Some(r) = cache.borrow().get(pattern) {
            return Ok(r.clone());
        }
        let r = Regex::new(pattern).map_err(|e| EvalError::BadArgument(format!("invalid regular expression: {e}")))?;
        let mut cache = cache.borrow_mut();
        if cache.len() >= CACHE {
            cache.clear();
        }
        cache.insert(pattern.to_string(), r.clone());
        Ok(r)
    })
}

/// Erlang's replacement syntax in Rust's: `&` → `${0}`, `\N` → `${N}`, `\&` → `&`, `$` → `$$`.
fn replacement(erlang: &str) -> String {
    let mut out = String::with_capacity(erlang.len() + 8);
    let mut chars = erlang.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("${0}"),
            '$' => out.push_str("$$"),
            '\\' => match chars.peek() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = String::new();
                    while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                        n.push(*d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('&') => {
                    out.push('&');
                    chars.next();
                }
                _ => out.push('\\'),
            },
            other => out.push(other),
        }
    }
    out
}

fn regex_replace(a: &[Value]) -> Result<Value, EvalError> {
    let s = text("regex_replace", &a[0])?;
    let re = compiled(text("regex_replace", &a[1])?)?;
    let rep = replacement(text("regex_replace", &a[2])?);
    // `replace_all`'s loop, checking the size as it grows: an expression that matches
    // everywhere times a long replacement must not allocate without bound.
    let (mut out, mut last) = (String::with_capacity(s.len()), 0);
    for caps in re.captures_iter(s) {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&s[last..m.start()]);
        caps.expand(&rep, &mut out);
        last = m.end();
        within_bound("regex_replace", Some(out.len()))?;
    }
    out.push_str(&s[last..]);
    Ok(Value::Str(out))
}

fn regex_extract(a: &[Value]) -> Result<Value, EvalError> {
    let s = text("regex_extract", &a[0])?;
    let re = compiled(text("regex_extract", &a[1])?)?;
    Ok(Value::List(match re.captures(s) {
        None => Vec::new(),
        Some(c) => c.iter().skip(1).map(|g| Value::Str(g.map_or(String::new(), |m| m.as_str().to_string()))).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use crate::functions::call;
    use crate::value::Value;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn match_replace_extract() {
        assert_eq!(call("regex_match", &[s("abc123"), s("\\d+")]).unwrap(), Value::Bool(true), "search, not anchored");
        assert_eq!(call("regex_match", &[s("abc"), s("^\\d+$")]).unwrap(), Value::Bool(false));
        assert_eq!(call("regex_replace", &[s("ab1cd22"), s("\\d+"), s("#")]).unwrap(), s("ab#cd#"));
        assert_eq!(call("regex_replace", &[s("a-b"), s("(\\w)-(\\w)"), s("\\2+\\1=&")]).unwrap(), s("b+a=a-b"));
        assert_eq!(call("regex_replace", &[s("cost"), s("cost"), s("$5")]).unwrap(), s("$5"));
        assert_eq!(
            call(
                "regex_extract",
                &[s("Temperature: 22.5C, Humidity: 45%"), s("Temperature: (\\d+\\.\\d+)C, Humidity: (\\d+)%")]
            )
            .unwrap(),
            Value::List(vec![s("22.5"), s("45")])
        );
        assert_eq!(call("regex_extract", &[s("none"), s("(\\d+)")]).unwrap(), Value::List(vec![]));
        assert!(call("regex_match", &[s("x"), s("(")]).is_err());
    }
}
