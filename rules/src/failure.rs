//! Why a rule failed on a message: the error ([`EvalError`]), the clause it happened in
//! ([`Clause`]), and how EMQX 5.8's rule tester prints the pair.
//!
//! EMQX answers a failed `POST /api/v5/rule_test` with 400 and a `message` that is JSON of its
//! own: the clause's error name and the first element of the reason
//! (`emqx_rule_engine_api:err_msg/1`), as `{"select_and_transform_error":"decode_json_failed"}`.
//! A function that refuses its arguments keeps its whole reason, a map:
//! `{"select_and_transform_error":{"arguments":["undefined"],"function_name":"upper",
//! "reason":"bad_sql_function_argument"}}` (`emqx_rule_runtime:do_apply_func/4`). Weir's
//! words stay in the error's `Display`, for logs and the CLI.

use crate::value::{NotJson, Value};

/// Why evaluating a rule failed for one message (EMQX counts these as `failed.exception`; the
/// rule goes on with the next message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// A path into the payload, whose payload is not JSON.
    #[error("the payload is not valid JSON")]
    DecodeJson,
    /// `x[a..b]` on something other than a list.
    #[error("a range [a..b] was applied to a value that is not a list")]
    RangeOnNonList,
    /// A value out of what an operation takes (EMQX: `badarg`).
    #[error("bad argument: {0}")]
    BadArgument(String),
    /// A function or an arithmetic operator that cannot take the kind of its arguments; EMQX's
    /// clause guards refuse them (`bad_sql_function_argument`).
    #[error("bad argument: {detail}")]
    FunctionArgument {
        /// The function or operator (`upper`, `+`).
        function: String,
        /// The arguments as a JSON array, each text cut at [`MAX_SHOWN`] bytes; empty until
        /// the call site fills it in ([`EvalError::with_arguments`]).
        arguments: String,
        /// What is wrong with them, in words.
        detail: String,
    },
    /// A known function called with a number of arguments it does not take; EMQX has no such
    /// function (`sql_function_not_supported`).
    #[error("bad argument: {0}")]
    Arity(String),
    /// An integer divided by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// An integer result out of range.
    #[error("integer overflow")]
    Overflow,
    /// A value that JSON cannot hold, where JSON was asked for.
    #[error(transparent)]
    NotJson(#[from] NotJson),
    /// A function the catalogue does not have.
    #[error("function {0}() is not supported")]
    UnknownFunction(String),
    /// The rule panicked on the batch this message was in (a bug, logged with the input).
    #[error("the rule failed on an internal error (logged)")]
    Panicked,
}

/// How many bytes of a text argument a [`EvalError::FunctionArgument`] keeps: a failing rule
/// must not copy whole payloads into every error it makes.
pub const MAX_SHOWN: usize = 256;

impl EvalError {
    /// A function or operator refused the kind of one of its arguments.
    pub fn function_argument(function: &str, detail: String) -> EvalError {
        EvalError::FunctionArgument { function: function.to_string(), arguments: String::new(), detail }
    }

    /// This error with the call's arguments, if it is a [`EvalError::FunctionArgument`] that
    /// has none yet; other errors as they are.
    pub fn with_arguments(self, args: &[Value]) -> EvalError {
        match self {
            EvalError::FunctionArgument { function, arguments, detail } if arguments.is_empty() => {
                EvalError::FunctionArgument { function, arguments: shown(args), detail }
            }
            other => other,
        }
    }

    /// The reason EMQX 5.8 gives for this error: an atom's name, or the
    /// `bad_sql_function_argument` map.
    pub fn emqx_reason(&self) -> serde_json::Value {
        let atom = match self {
            EvalError::DecodeJson => "decode_json_failed",
            EvalError::RangeOnNonList => "range_get",
            EvalError::BadArgument(_) | EvalError::NotJson(_) => "badarg",
            EvalError::FunctionArgument { function, arguments, .. } => {
                let arguments = serde_json::from_str(arguments).unwrap_or_else(|_| serde_json::json!([]));
                return serde_json::json!({
                    "arguments": arguments,
                    "function_name": function,
                    "reason": "bad_sql_function_argument",
                });
            }
            EvalError::Arity(_) | EvalError::UnknownFunction(_) => "sql_function_not_supported",
            EvalError::DivisionByZero | EvalError::Overflow => "badarith",
            EvalError::Panicked => "internal_error",
        };
        serde_json::Value::String(atom.into())
    }
}

/// The arguments as a JSON array, as EMQX's JSON encoder writes them (`undefined` as a string),
/// each text cut at [`MAX_SHOWN`] bytes; bytes that are not UTF-8 shown as text, lossily.
fn shown(args: &[Value]) -> String {
    let cut = |s: &str| {
        let mut end = s.len().min(MAX_SHOWN);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Value::Str(s[..end].to_string())
    };
    let items = args
        .iter()
        .map(|v| match v {
            Value::Str(s) => cut(s),
            Value::Bin(b) => cut(&String::from_utf8_lossy(&b[..b.len().min(MAX_SHOWN)])),
            Value::Float(f) if !f.is_finite() => Value::Str(f.to_string()),
            other => other.clone(),
        })
        .collect();
    Value::List(items).to_json().unwrap_or_else(|_| "[]".into())
}

/// The clause of a rule that failed; EMQX names its errors after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clause {
    /// SELECT's fields (`select_and_transform_error`).
    Select,
    /// WHERE (`match_conditions_error`).
    Where,
    /// FOREACH's expression and its bindings (`select_and_collect_error`).
    Foreach,
    /// DO's fields, per element (`doeach_error`).
    Do,
    /// INCASE, per element (`match_incase_error`).
    Incase,
}

impl Clause {
    /// EMQX's name for an error in this clause.
    pub fn emqx_error(self) -> &'static str {
        match self {
            Clause::Select => "select_and_transform_error",
            Clause::Where => "match_conditions_error",
            Clause::Foreach => "select_and_collect_error",
            Clause::Do => "doeach_error",
            Clause::Incase => "match_incase_error",
        }
    }

    /// The clause's keyword, for people.
    pub fn keyword(self) -> &'static str {
        match self {
            Clause::Select => "SELECT",
            Clause::Where => "WHERE",
            Clause::Foreach => "FOREACH",
            Clause::Do => "DO",
            Clause::Incase => "INCASE",
        }
    }
}

/// A rule's failure on one message: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error} (in {})", clause.keyword())]
pub struct Failure {
    /// The clause that failed.
    pub clause: Clause,
    /// Why.
    pub error: EvalError,
}

impl Failure {
    /// The `message` of EMQX 5.8's 400 answer to `POST /api/v5/rule_test`.
    pub fn emqx_message(&self) -> String {
        let mut m = serde_json::Map::new();
        m.insert(self.clause.emqx_error().into(), self.error.emqx_reason());
        serde_json::Value::Object(m).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emqx_messages_of_its_api_suite() {
        // emqx_rule_engine_api_SUITE, t_crud_rule_api: a payload that is not JSON, and a text
        // compared with a number.
        let f = |clause, error| Failure { clause, error }.emqx_message();
        assert_eq!(f(Clause::Select, EvalError::DecodeJson), r#"{"select_and_transform_error":"decode_json_failed"}"#);
        assert_eq!(f(Clause::Select, EvalError::BadArgument("x".into())), r#"{"select_and_transform_error":"badarg"}"#);
        // emqx_rule_engine_SUITE, t_function_clause_errors: upper(undefined).
        let upper = EvalError::function_argument("upper", "no".into()).with_arguments(&[Value::Undefined]);
        assert_eq!(
            f(Clause::Where, upper),
            r#"{"match_conditions_error":{"arguments":["undefined"],"function_name":"upper","reason":"bad_sql_function_argument"}}"#
        );
    }

    #[test]
    fn arguments_are_cut_and_always_json() {
        let long = "é".repeat(MAX_SHOWN);
        let e = EvalError::function_argument("f", String::new()).with_arguments(&[
            Value::Str(long),
            Value::Bin(vec![0xff; 1000]),
            Value::Float(f64::NAN),
        ]);
        let EvalError::FunctionArgument { arguments, .. } = &e else { panic!("{e:?}") };
        let parsed: Vec<String> = serde_json::from_str(arguments).expect("JSON");
        assert!(parsed[0].len() <= MAX_SHOWN && parsed[1].len() <= MAX_SHOWN, "{parsed:?}");
        assert_eq!(parsed[2], "NaN");
        // The arguments of the inner call that failed stay: its caller does not overwrite them.
        assert_eq!(e.clone().with_arguments(&[Value::Int(1)]), e);
    }
}
