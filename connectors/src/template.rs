//! EMQX's `${...}` templates, parsed once when a sink starts and rendered per row.
//!
//! `${field}` and `${.field}` read a top-level field, `${payload.a.b}` a nested one (a JSON text
//! field is looked into, as EMQX decodes a payload on the way), and `${.}` is the whole row as JSON.
//! A missing field renders as `undefined`, as in EMQX; SQL sinks bind it as NULL instead.
//!
//! A template whose text is JSON (it starts with `{` or `[`) is rendered so that the result is
//! always valid JSON: a placeholder inside a JSON string is escaped as string content, and a bare
//! placeholder becomes a JSON value (a missing one `null`, since JSON has no `undefined`).

use std::fmt::Write;

use serde_json::Value;

use crate::row::Row;

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `${` with no `}` after it, at this byte.
    #[error("`${{` at byte {0} is never closed by `}}`")]
    Unclosed(usize),
    /// A `${}`, at this byte.
    #[error("empty placeholder `${{}}` at byte {0}: write `${{.}}` for the whole row or `${{field}}`")]
    Empty(usize),
    /// A template written as JSON that does not render as JSON, with serde_json's complaint.
    #[error("the template is JSON but does not render as JSON ({0}); check its quotes and commas")]
    NotJson(String),
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    /// A field path (`["payload", "a"]`); empty for the whole row.
    Field {
        path: Vec<String>,
        context: Context,
    },
}

/// Where a placeholder sits in a JSON template, which decides how its value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Plain text: strings as they are, other values as JSON, missing as `undefined`.
    Text,
    /// Inside a JSON string: the text form, escaped for a JSON string.
    JsonString,
    /// Where a JSON value goes: the value as JSON, missing as `null`.
    JsonValue,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`; a template that starts with `{` or `[` is a JSON template.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let json = matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['));
        let mut parts = Vec::new();
        let mut literal = String::new();
        // Whether the literal text so far leaves us inside a JSON string, and after a backslash.
        let (mut in_string, mut escaped) = (false, false);
        let mut rest = text;
        let mut at = 0;
        while let Some(start) = rest.find("${") {
            for c in rest[..start].chars() {
                literal.push(c);
                if escaped {
                    escaped = false;
                } else if in_string && c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = !in_string;
                }
            }
            let end = rest[start..].find('}').ok_or(TemplateError::Unclosed(at + start))?;
            let inner = rest[start + 2..start + end].trim();
            if inner.is_empty() {
                return Err(TemplateError::Empty(at + start));
            }
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            let context = match (json, in_string) {
                (false, _) => Context::Text,
                (true, true) => Context::JsonString,
                (true, false) => Context::JsonValue,
            };
            parts.push(Part::Field { path: parse_path(inner), context });
            at += start + end + 1;
            rest = &rest[start + end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        let template = Template { parts };
        if json {
            // Every value renders as valid JSON in its place, so a sample row shows whether the
            // literal text around the placeholders is JSON.
            let sample = template.render(&Row::default());
            serde_json::from_str::<Value>(&sample).map_err(|e| TemplateError::NotJson(e.to_string()))?;
        }
        Ok(template)
    }

    /// The template `${.}`: the whole row as JSON.
    pub fn whole_row() -> Template {
        Template { parts: vec![Part::Field { path: Vec::new(), context: Context::Text }] }
    }

    /// Renders the template for `row`.
    pub fn render(&self, row: &Row) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                // The whole row, written as it is rather than copied into a value first.
                Part::Field { path, context } if path.is_empty() => match context {
                    Context::Text | Context::JsonValue => out.push_str(row.json()),
                    Context::JsonString => {
                        let quoted = Value::String(row.json().to_string()).to_string();
                        out.push_str(&quoted[1..quoted.len() - 1]);
                    }
                },
                Part::Field { path, context } => {
                    let value = lookup(row, path);
                    match context {
                        Context::Text => write_text(value.as_deref(), &mut out),
                        Context::JsonValue => match value.as_deref() {
                            Some(v) => write_json(v, &mut out),
                            None => out.push_str("null"),
                        },
                        Context::JsonString => {
                            let mut text = String::new();
                            write_text(value.as_deref(), &mut text);
                            let quoted = Value::String(text).to_string();
                            out.push_str(&quoted[1..quoted.len() - 1]);
                        }
                    }
                }
            }
        }
        out
    }

    /// Whether the template has no placeholder: it renders the same for every row.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The field paths the template reads, in order (`${.}` reads the empty path).
    pub fn fields(&self) -> impl Iterator<Item = &[String]> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field { path, .. } => Some(path.as_slice()),
            Part::Text(_) => None,
        })
    }

    /// The template with each placeholder replaced by `placeholder(n)` (n from 1), for SQL whose
    /// values are bound as parameters, never pasted into the text.
    pub fn with_parameters(&self, placeholder: impl Fn(usize) -> String) -> String {
        let mut out = String::new();
        let mut n = 0;
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field { .. } => {
                    n += 1;
                    out.push_str(&placeholder(n));
                }
            }
        }
        out
    }
}

/// `payload.a.b` → `["payload", "a", "b"]`; `.` → `[]`; a leading `.` is dropped (`${.temp}`).
/// Quoted steps (`pub_props.'User-Property'`) lose their quotes.
fn parse_path(inner: &str) -> Vec<String> {
    let inner = inner.strip_prefix('.').unwrap_or(inner);
    if inner.is_empty() {
        return Vec::new();
    }
    inner.split('.').map(|s| s.trim().trim_matches(|c| c == '\'' || c == '"').to_string()).collect()
}

/// The value at `path` in `row`; a step into a string holding JSON looks into the decoded JSON.
pub fn lookup<'r>(row: &'r Row, path: &[String]) -> Option<std::borrow::Cow<'r, Value>> {
    use std::borrow::Cow;
    let Some((first, rest)) = path.split_first() else {
        return Some(Cow::Owned(Value::Object(row.fields().clone())));
    };
    let mut value = Cow::Borrowed(row.get(first)?);
    for step in rest {
        if let Value::String(s) = value.as_ref() {
            value = Cow::Owned(serde_json::from_str::<Value>(s).ok()?);
        }
        value = match value {
            Cow::Borrowed(v) => Cow::Borrowed(step_into(v, step)?),
            Cow::Owned(v) => Cow::Owned(step_into(&v, step)?.clone()),
        };
    }
    Some(value)
}

fn step_into<'v>(value: &'v Value, step: &str) -> Option<&'v Value> {
    match value {
        Value::Object(m) => m.get(step),
        Value::Array(a) => step.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    }
}

/// A value as text: strings as they are, others as compact JSON, missing as `undefined`.
fn write_text(value: Option<&Value>, out: &mut String) {
    match value {
        None => out.push_str("undefined"),
        Some(Value::String(s)) => out.push_str(s),
        Some(v) => write_json(v, out),
    }
}

fn write_json(value: &Value, out: &mut String) {
    let _ = write!(out, "{value}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Row {
        match v {
            Value::Object(m) => Row::from(m),
            _ => unreachable!("rows are objects"),
        }
    }

    #[test]
    fn fields_paths_and_the_whole_row() {
        let r = row(json!({"clientid": "c1", "payload": "{\"a\":{\"b\":7}}", "temp": 21.5, "on": true}));
        let t = |s: &str| Template::parse(s).unwrap().render(&r);
        assert_eq!(t("dev/${clientid}/${.temp}"), "dev/c1/21.5");
        assert_eq!(t("${payload.a.b}"), "7");
        assert_eq!(t("${payload.a}"), r#"{"b":7}"#);
        assert_eq!(t("${missing}|${payload.x.y}"), "undefined|undefined");
        assert_eq!(t("${on}"), "true");
        assert_eq!(t("${.}"), r#"{"clientid":"c1","on":true,"payload":"{\"a\":{\"b\":7}}","temp":21.5}"#);
        assert_eq!(t("no placeholders"), "no placeholders");
    }

    #[test]
    fn json_templates_stay_json_whatever_the_values() {
        let nasty = "a\"b\\c\n}{,";
        let r = row(json!({"s": nasty, "n": 3, "o": {"k": [1, "x"]}}));
        let t = Template::parse(r#"{"s": "${s}", "raw": ${s}, "n": ${n}, "o": ${o}, "m": ${m}, "in": "v=${n};${m}"}"#)
            .unwrap();
        let out: Value = serde_json::from_str(&t.render(&r)).unwrap();
        assert_eq!(
            out,
            json!({"s": nasty, "raw": nasty, "n": 3, "o": {"k": [1, "x"]}, "m": null, "in": "v=3;undefined"})
        );
        let list = Template::parse("[${n}, \"${s}\"]").unwrap();
        assert_eq!(serde_json::from_str::<Value>(&list.render(&r)).unwrap(), json!([3, nasty]));
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        assert_eq!(Template::parse("a ${b"), Err(TemplateError::Unclosed(2)));
        assert_eq!(Template::parse("${ }"), Err(TemplateError::Empty(0)));
        assert!(matches!(Template::parse(r#"{"a": ${a} "b": 1}"#), Err(TemplateError::NotJson(_))));
    }

    #[test]
    fn sql_templates_become_parameters() {
        let t = Template::parse("INSERT INTO t (a, b) VALUES (${a}, ${payload.b})").unwrap();
        assert_eq!(t.with_parameters(|n| format!("${n}")), "INSERT INTO t (a, b) VALUES ($1, $2)");
        let fields: Vec<_> = t.fields().map(<[String]>::to_vec).collect();
        assert_eq!(fields, vec![vec!["a".to_string()], vec!["payload".to_string(), "b".to_string()]]);
    }
}
