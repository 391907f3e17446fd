//! String functions. Lengths and positions count characters, not bytes (`strlen('你好')` is 2);
//! `substr` is 0-based, as in EMQX.

use super::{bad, integer, text, within_bound, Function};
use crate::value::Value;
use crate::EvalError;

pub(super) const FUNCTIONS: &[Function] = &[
    Function {
        name: "lower",
        min_args: 1,
        max_args: 1,
        call: |a| Ok(Value::Str(text("lower", &a[0])?.to_lowercase())),
    },
    Function {
        name: "upper",
        min_args: 1,
        max_args: 1,
        call: |a| Ok(Value::Str(text("upper", &a[0])?.to_uppercase())),
    },
    Function {
        name: "trim",
        min_args: 1,
        max_args: 1,
        call: |a| Ok(Value::Str(text("trim", &a[0])?.trim().to_string())),
    },
    Function {
        name: "ltrim",
        min_args: 1,
        max_args: 1,
        call: |a| Ok(Value::Str(text("ltrim", &a[0])?.trim_start().to_string())),
    },
    Function { name: "rtrim", min_args: 1, max_args: 2, call: rtrim },
    Function {
        name: "reverse",
        min_args: 1,
        max_args: 1,
        call: |a| Ok(Value::Str(text("reverse", &a[0])?.chars().rev().collect())),
    },
    Function {
        name: "strlen",
        min_args: 1,
        max_args: 1,
        call: |a| Ok(Value::Int(text("strlen", &a[0])?.chars().count() as i64)),
    },
    Function {
        name: "ascii",
        min_args: 1,
        max_args: 1,
        call: |a| {
            text("ascii", &a[0])?.bytes().next().map(|b| Value::Int(i64::from(b))).ok_or_else(|| bad("ascii", &a[0]))
        },
    },
    Function { name: "substr", min_args: 2, max_args: 3, call: substr },
    Function {
        name: "rm_prefix",
        min_args: 2,
        max_args: 2,
        call: |a| {
            let s = text("rm_prefix", &a[0])?;
            let p = text("rm_prefix", &a[1])?;
            Ok(Value::Str(s.strip_prefix(p).unwrap_or(s).to_string()))
        },
    },
    Function { name: "concat", min_args: 1, max_args: 2, call: concat },
    Function { name: "pad", min_args: 2, max_args: 4, call: pad },
    Function { name: "replace", min_args: 3, max_args: 4, call: replace },
    Function { name: "split", min_args: 2, max_args: 3, call: split },
    Function { name: "tokens", min_args: 2, max_args: 3, call: tokens },
    Function { name: "find", min_args: 2, max_args: 3, call: find },
    Function { name: "join_to_string", min_args: 1, max_args: 2, call: join_to_string },
    Function { name: "join_to_sql_values_string", min_args: 1, max_args: 1, call: join_to_sql_values_string },
];

fn rtrim(a: &[Value]) -> Result<Value, EvalError> {
    let s = text("rtrim", &a[0])?;
    Ok(Value::Str(match a.get(1) {
        None => s.trim_end().to_string(),
        Some(chars) => {
            let chars: Vec<char> = text("rtrim", chars)?.chars().collect();
            s.trim_end_matches(|c| chars.contains(&c)).to_string()
        }
    }))
}

/// `substr(s, start[, len])`, 0-based; out-of-range parts are clamped.
fn substr(a: &[Value]) -> Result<Value, EvalError> {
    let s = text("substr", &a[0])?;
    let start = integer("substr", &a[1])?;
    if start < 0 {
        return Err(bad("substr", &a[1]));
    }
    let chars = s.chars().skip(start as usize);
    Ok(Value::Str(match a.get(2) {
        None => chars.collect(),
        Some(len) => {
            let len = integer("substr", len)?;
            if len < 0 {
                return Err(bad("substr", &a[2]));
            }
            chars.take(len as usize).collect()
        }
    }))
}

fn list_arg<'a>(name: &str, v: &'a Value) -> Result<&'a [Value], EvalError> {
    match v {
        Value::List(l) => Ok(l),
        other => Err(bad(name, other)),
    }
}

/// `concat(a, b)` or `concat([a, b, ...])`; values that are not text are written as `str()` does.
fn concat(a: &[Value]) -> Result<Value, EvalError> {
    let parts = if a.len() == 1 { list_arg("concat", &a[0])? } else { a };
    let mut out = String::new();
    for p in parts {
        out.push_str(&p.to_text()?);
    }
    Ok(Value::Str(out))
}

/// `pad(s, len[, leading|trailing|both[, fill]])`: fill (one unit, whatever its length) until `s`
/// is `len` characters; with `both` the odd unit goes to the right.
fn pad(a: &[Value]) -> Result<Value, EvalError> {
    let s = text("pad", &a[0])?;
    let len = integer("pad", &a[1])?;
    let side = a.get(2).map(|v| text("pad", v)).transpose()?.unwrap_or("trailing");
    let fill = a.get(3).map(|v| text("pad", v)).transpose()?.unwrap_or(" ");
    let missing = usize::try_from(len).unwrap_or(0).saturating_sub(s.chars().count());
    within_bound("pad", fill.len().checked_mul(missing).and_then(|n| n.checked_add(s.len())))?;
    let (left, right) = match side {
        "trailing" => (0, missing),
        "leading" => (missing, 0),
        "both" => (missing / 2, missing - missing / 2),
        _ => return Err(bad("pad", &a[2])),
    };
    Ok(Value::Str(format!("{}{s}{}", fill.repeat(left), fill.repeat(right))))
}

/// Literal replacement: every occurrence, or the first (`leading`) or last (`trailing`).
fn replace(a: &[Value]) -> Result<Value, EvalError> {
    let s = text("replace", &a[0])?;
    let pat = text("replace", &a[1])?;
    let rep = text("replace", &a[2])?;
    if pat.is_empty() {
        return Ok(Value::Str(s.to_string()));
    }
    let out = match a.get(3).map(|v| text("replace", v)).transpose()?.unwrap_or("all") {
        "all" => {
            if rep.len() > pat.len() {
                let grows = s.matches(pat).count().checked_mul(rep.len() - pat.len());
                within_bound("replace", grows.and_then(|n| n.checked_add(s.len())))?;
            }
            s.replace(pat, rep)
        }
        "leading" => s.replacen(pat, rep, 1),
        "trailing" => match s.rfind(pat) {
            Some(i) => format!("{}{rep}{}", &s[..i], &s[i + pat.len()..]),
            None => s.to_string(),
        },
        _ => return Err(bad("replace", &a[3])),
    };
    Ok(Value::Str(out))
}

/// `split(s, sep[, variant])`: at every separator and without empty parts by default;
/// `notrim` keeps empty parts; `leading`/`trailing` split at the first/last separator only.
fn split(a: &[Value]) -> Result<Value, EvalError> {
    let s = text("split", &a[0])?;
    let sep = text("split", &a[1])?;
    let variant = a.get(2).map(|v| text("split", v)).transpose()?.unwrap_or("all");
    let (mode, keep_empty) = match variant {
        "all" => ("all", false),
        "notrim" => ("all", true),
        "leading" => ("leading", false),
        "leading_notrim" => ("leading", true),
        "trailing" => ("trailing", false),
        "trailing_notrim" => ("trailing", true),
        _ => return Err(bad("split", &a[2])),
    };
    let parts: Vec<&str> = if sep.is_empty() {
        vec![s]
    } else {
        match mode {
            "all" => s.split(sep).collect(),
            "leading" => s.splitn(2, sep).collect(),
            _ => match s.rfind(sep) {
                Some(i) => vec![&s[..i], &s[i + sep.len()..]],
                None => vec![s],
            },
        }
    };
    Ok(Value::List(
        parts.into_iter().filter(|p| keep_empty || !p.is_empty()).map(|p| Value::Str(p.to_string())).collect(),
    ))
}

/// `tokens(s, chars[, 'nocrlf'])`: split on any of `chars` (and CR, LF with `nocrlf`), no empty parts.
fn tokens(a: &[Value]) -> Result<Value, EvalError> {
    let s = text("tokens", &a[0])?;
    let mut seps: Vec<char> = text("tokens", &a[1])?.chars().collect();
    match a.get(2).map(|v| text("tokens", v)).transpose()? {
        None => {}
        Some("nocrlf") => seps.extend(['\r', '\n']),
        Some(_) => return Err(bad("tokens", &a[2])),
    }
    Ok(Value::List(
        s.split(|c| seps.contains(&c)).filter(|p| !p.is_empty()).map(|p| Value::Str(p.to_string())).collect(),
    ))
}

/// The rest of `s` from the first (or last, `trailing`) occurrence of `pat`, or `''`.
fn find(a: &[Value]) -> Result<Value, EvalError> {
    let s = text("find", &a[0])?;
    let pat = text("find", &a[1])?;
    let at = match a.get(2).map(|v| text("find", v)).transpose()?.unwrap_or("leading") {
        "leading" => s.find(pat),
        "trailing" => s.rfind(pat),
        _ => return Err(bad("find", &a[2])),
    };
    Ok(Value::Str(at.map_or(String::new(), |i| s[i..].to_string())))
}

/// `join_to_string([sep,] list)`; the separator defaults to `", "`.
fn join_to_string(a: &[Value]) -> Result<Value, EvalError> {
    let (sep, list) = match a {
        [list] => (", ", list),
        [sep, list] => (text("join_to_string", sep)?, list),
        _ => return Err(bad("join_to_string", &Value::Undefined)),
    };
    let parts = list_arg("join_to_string", list)?.iter().map(Value::to_text).collect::<Result<Vec<String>, _>>()?;
    Ok(Value::Str(parts.join(sep)))
}

/// Values for an SQL `VALUES (...)`: text in single quotes (quotes doubled), numbers as they are.
fn join_to_sql_values_string(a: &[Value]) -> Result<Value, EvalError> {
    let parts = list_arg("join_to_sql_values_string", &a[0])?
        .iter()
        .map(|v| match v {
            Value::Str(s) => Ok(format!("'{}'", s.replace('\'', "''"))),
            other => other.to_text(),
        })
        .collect::<Result<Vec<String>, _>>()?;
    Ok(Value::Str(parts.join(", ")))
}

#[cfg(test)]
mod tests {
    use crate::functions::call;
    use crate::value::Value;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    fn list(items: &[&str]) -> Value {
        Value::List(items.iter().map(|i| s(i)).collect())
    }

    #[test]
    fn case_trim_length() {
        assert_eq!(call("upper", &[s("abc")]).unwrap(), s("ABC"));
        assert!(call("upper", &[Value::Undefined]).is_err(), "upper(undefined) fails the rule");
        assert_eq!(call("trim", &[s("\r\n a \r\n")]).unwrap(), s("a"));
        assert_eq!(call("rtrim", &[s("abcxx"), s("x")]).unwrap(), s("abc"));
        assert_eq!(call("strlen", &[s("你好")]).unwrap(), Value::Int(2));
        assert_eq!(call("reverse", &[s("abc")]).unwrap(), s("cba"));
        assert_eq!(call("ascii", &[s("a")]).unwrap(), Value::Int(97));
    }

    #[test]
    fn substr_is_zero_based() {
        assert_eq!(call("substr", &[s("hello world"), Value::Int(6)]).unwrap(), s("world"));
        assert_eq!(call("substr", &[s("hello"), Value::Int(1), Value::Int(3)]).unwrap(), s("ell"));
        assert_eq!(call("substr", &[s("hi"), Value::Int(5)]).unwrap(), s(""));
    }

    #[test]
    fn split_variants() {
        assert_eq!(call("split", &[s("a;;b;;c"), s(";")]).unwrap(), list(&["a", "b", "c"]));
        assert_eq!(call("split", &[s("a;;b"), s(";"), s("notrim")]).unwrap(), list(&["a", "", "b"]));
        assert_eq!(call("split", &[s("a/b/c"), s("/"), s("leading")]).unwrap(), list(&["a", "b/c"]));
        assert_eq!(call("split", &[s("a/b/c"), s("/"), s("trailing")]).unwrap(), list(&["a/b", "c"]));
        assert_eq!(call("tokens", &[s("a b,c\nd"), s(" ,"), s("nocrlf")]).unwrap(), list(&["a", "b", "c", "d"]));
    }

    #[test]
    fn replace_find_pad_concat_join() {
        assert_eq!(call("replace", &[s("abab"), s("b"), s("X")]).unwrap(), s("aXaX"));
        assert_eq!(call("replace", &[s("abab"), s("b"), s("X"), s("leading")]).unwrap(), s("aXab"));
        assert_eq!(call("replace", &[s("abab"), s("b"), s("X"), s("trailing")]).unwrap(), s("abaX"));
        assert_eq!(call("find", &[s("a/b/c"), s("/")]).unwrap(), s("/b/c"));
        assert_eq!(call("find", &[s("a/b/c"), s("/"), s("trailing")]).unwrap(), s("/c"));
        assert_eq!(call("find", &[s("abc"), s("z")]).unwrap(), s(""));
        assert_eq!(call("pad", &[s("ab"), Value::Int(5)]).unwrap(), s("ab   "));
        assert_eq!(call("pad", &[s("ab"), Value::Int(5), s("both"), s("*")]).unwrap(), s("*ab**"));
        assert_eq!(call("pad", &[s("ab"), Value::Int(4), s("leading"), s("0")]).unwrap(), s("00ab"));
        assert_eq!(call("concat", &[s("a"), Value::Int(1)]).unwrap(), s("a1"));
        assert_eq!(call("concat", &[Value::List(vec![s("x"), Value::Float(2.0)])]).unwrap(), s("x2.0"));
        assert_eq!(call("join_to_string", &[list(&["a", "b"])]).unwrap(), s("a, b"));
        assert_eq!(call("join_to_string", &[s("-"), list(&["a", "b"])]).unwrap(), s("a-b"));
        assert_eq!(
            call("join_to_sql_values_string", &[Value::List(vec![s("it's"), Value::Int(3)])]).unwrap(),
            s("'it''s', 3")
        );
        assert_eq!(call("rm_prefix", &[s("t/a"), s("t/")]).unwrap(), s("a"));
    }

    #[test]
    fn results_have_a_bound() {
        let e = call("pad", &[s("a"), Value::Int(i64::MAX)]).unwrap_err().to_string();
        assert!(e.contains("larger than 16 MiB"), "{e}");
        assert!(call("pad", &[s("a"), Value::Int(1 << 20), s("both"), s("0123456789abcdef0123")]).is_err());
        let big = "a".repeat(1 << 20);
        assert!(call("replace", &[s(&big), s("a"), s(&"b".repeat(64))]).is_err());
        assert_eq!(call("replace", &[s(&big), s("a"), s("")]).unwrap(), s(""));
        assert_eq!(call("pad", &[s("é"), Value::Int(-5)]).unwrap(), s("é"));
    }
}
