//! `sprintf_s(Fmt, [Args])` and `sprintf(Fmt, Args...)`: Erlang's `io_lib:format` directives,
//! as EMQX passes the format to it. Supported: `~s` (text), `~p` and `~w` (the Erlang term, so a
//! string prints as `<<"abc">>`), `~d`, `~f` and `~e` (with `~.Nf` precision), `~c`, `~n`, `~~`,
//! each also with the Unicode modifier (`~ts`, `~tp`).
//! Any other directive, or a missing argument, is an error, as `io_lib:format` raises one.

use std::fmt::Write;

use super::{bad, text, Function};
use crate::value::{format_float, Value};
use crate::EvalError;

pub(super) const FUNCTIONS: &[Function] = &[
    Function {
        name: "sprintf_s",
        min_args: 2,
        max_args: 2,
        call: |a| match &a[1] {
            Value::List(args) => format(text("sprintf_s", &a[0])?, args).map(Value::Str),
            other => Err(bad("sprintf_s", other)),
        },
    },
    Function {
        name: "sprintf",
        min_args: 1,
        max_args: usize::MAX,
        call: |a| format(text("sprintf", &a[0])?, &a[1..]).map(Value::Str),
    },
];

/// The most decimals `~.Nf` takes, as `float2str` (Erlang's `float_to_binary` allows 253).
const MAX_PRECISION: usize = 253;

/// `~.Nf`'s precision, read after the `~` if there is one; field widths are not supported.
fn precision(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Option<usize>, EvalError> {
    if chars.next_if_eq(&'.').is_none() {
        return Ok(None);
    }
    let mut digits = String::new();
    while let Some(d) = chars.next_if(char::is_ascii_digit) {
        digits.push(d);
    }
    let precision = digits.parse::<usize>().ok();
    // `float2str`'s bound: a client's format must not ask for a billion digits.
    if !digits.is_empty() && precision.is_none_or(|p| p > MAX_PRECISION) {
        return Err(EvalError::BadArgument(format!("sprintf: precision ~.{digits} is past {MAX_PRECISION}")));
    }
    Ok(precision)
}

fn format(fmt: &str, args: &[Value]) -> Result<String, EvalError> {
    let mut out = String::with_capacity(fmt.len());
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    let mut next_arg = |directive: char| {
        args.next().ok_or_else(|| EvalError::BadArgument(format!("sprintf: no argument left for ~{directive}")))
    };
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        let precision = precision(&mut chars)?;
        // `~t`: Unicode translation. Rust's text is Unicode already, so `~ts` is `~s`.
        let directive = match chars.next() {
            Some('t') => chars.next(),
            other => other,
        };
        match directive {
            Some('~') => out.push('~'),
            Some('n') => out.push('\n'),
            Some('s') => out.push_str(&next_arg('s')?.to_text()?),
            Some(d @ ('p' | 'w')) => write_term(next_arg(d)?, &mut out)?,
            Some('d') => match next_arg('d')? {
                Value::Int(i) => {
                    let _ = write!(out, "{i}");
                }
                other => return Err(bad("sprintf ~d", other)),
            },
            Some(d @ ('f' | 'e')) => {
                let f = match next_arg(d)? {
                    Value::Float(f) => *f,
                    Value::Int(i) => *i as f64,
                    other => return Err(bad("sprintf ~f", other)),
                };
                let p = precision.unwrap_or(6);
                let _ = if d == 'f' { write!(out, "{f:.p$}") } else { write!(out, "{f:.p$e}") };
            }
            Some('c') => match next_arg('c')? {
                Value::Int(i) => out.push(u32::try_from(*i).ok().and_then(char::from_u32).unwrap_or('\u{fffd}')),
                other => return Err(bad("sprintf ~c", other)),
            },
            other => {
                let shown = other.map_or_else(|| "the end".to_string(), |c| format!("~{c}"));
                return Err(EvalError::BadArgument(format!("sprintf: unsupported directive {shown}")));
            }
        }
    }
    Ok(out)
}

/// An Erlang term as `~p` prints it: binaries as `<<"...">>`, maps as `#{K => V}`.
fn write_term(v: &Value, out: &mut String) -> Result<(), EvalError> {
    match v {
        Value::Undefined => out.push_str("undefined"),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&format_float(*f)),
        Value::Str(s) => {
            out.push_str("<<\"");
            out.push_str(&s.replace('\\', "\\\\").replace('"', "\\\""));
            out.push_str("\">>");
        }
        Value::Bin(b) => {
            let bytes: Vec<String> = b.iter().map(u8::to_string).collect();
            let _ = write!(out, "<<{}>>", bytes.join(","));
        }
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_term(item, out)?;
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("#{");
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_term(&Value::Str(k.clone()), out)?;
                out.push_str(" => ");
                write_term(item, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    #[test]
    fn directives_print_as_io_lib_format() {
        let args = [s("abc"), Value::Int(42), Value::Float(1.5), s("x")];
        assert_eq!(format("~s-~d-~.2f-~p~n~~", &args).unwrap(), "abc-42-1.50-<<\"x\">>\n~");
        assert_eq!(format("~f", &[Value::Float(0.1)]).unwrap(), "0.100000");
        assert!(format("~.999999999f", &[Value::Float(0.1)]).is_err(), "no billion digits");
        assert!(format("~.99999999999999999999999f", &[Value::Float(0.1)]).is_err());
        assert_eq!(format("~w", &[Value::List(vec![Value::Int(1), s("a")])]).unwrap(), "[1,<<\"a\">>]");
        assert_eq!(format("~c~c", &[Value::Int(104), Value::Int(105)]).unwrap(), "hi");
    }

    #[test]
    fn missing_arguments_and_unknown_directives_fail() {
        assert!(format("~s ~s", &[s("a")]).unwrap_err().to_string().contains("no argument left for ~s"));
        assert!(format("~q", &[s("a")]).unwrap_err().to_string().contains("~q"));
        assert!(format("~d", &[s("a")]).is_err());
    }
}
