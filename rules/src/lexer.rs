//! Tokens of the rule dialect: sqlparser's tokenizer with a dialect of EMQX's lexical rules,
//! and the few fixes its SQL rules need for EMQX's syntax (`1..4`, `=~`, `a.1`).

use sqlparser::dialect::Dialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::ParseError;

/// EMQX's lexical rules: identifiers may contain `$`, `@` and `~`; `"..."` is an identifier.
#[derive(Debug)]
struct EmqxDialect;

impl Dialect for EmqxDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_ascii_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_ascii_alphanumeric() || matches!(ch, '_' | '$' | '@')
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '"'
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A name or keyword; `quoted` for `"..."`.
    Word {
        value: String,
        quoted: bool,
    },
    Number(String),
    /// A single-quoted string.
    Str(String),
    Comma,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Dot,
    DotDot,
    Star,
    Plus,
    Minus,
    Slash,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `=~`
    Match,
    Semicolon,
    /// Anything the dialect has no use for: the parser reports it where it stands.
    Other(String),
    Eof,
}

/// A token and where it starts (1-based line and column).
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub tok: Tok,
    pub line: u64,
    pub column: u64,
}

/// Splits `sql` into tokens, ending with [`Tok::Eof`]. Comments and whitespace are dropped.
pub fn tokenize(sql: &str) -> Result<Vec<Spanned>, ParseError> {
    let raw = Tokenizer::new(&EmqxDialect, sql).tokenize_with_location().map_err(|e| ParseError {
        line: e.location.line,
        column: e.location.column,
        message: e.message,
    })?;
    let mut out: Vec<Spanned> = Vec::with_capacity(raw.len());
    let mut iter = raw.into_iter().peekable();
    while let Some(t) = iter.next() {
        let (line, column) = (t.span.start.line, t.span.start.column);
        let toks = match t.token {
            Token::Whitespace(_) => continue,
            Token::Number(n, _) => number(n, &mut iter, out.last().map(|s| &s.tok)),
            // `..` arrives as two periods; `=~` as `=` and `~`.
            Token::Period if next_is(&mut iter, &Token::Period) => vec![Tok::DotDot],
            Token::Eq | Token::DoubleEq if next_is(&mut iter, &Token::Tilde) => vec![Tok::Match],
            other => vec![single(other)],
        };
        out.extend(toks.into_iter().map(|tok| Spanned { tok, line, column }));
    }
    let (line, column) = out.last().map_or((1, 1), |s| (s.line, s.column + 1));
    out.push(Spanned { tok: Tok::Eof, line, column });
    Ok(out)
}

/// sqlparser's tokens, as the tokenizer gives them.
type Raw = std::iter::Peekable<std::vec::IntoIter<sqlparser::tokenizer::TokenWithSpan>>;

/// Takes the next token if it is `want`.
fn next_is(iter: &mut Raw, want: &Token) -> bool {
    let found = iter.peek().is_some_and(|t| t.token == *want);
    if found {
        iter.next();
    }
    found
}

/// The tokens a number stands for in rule SQL: sqlparser reads `1..4` as `1.` `.4`, `1..-1` as
/// `1.` `.`, and the path `a.1` as `a` `.1`, which are split back out here.
fn number(n: String, iter: &mut Raw, previous: Option<&Tok>) -> Vec<Tok> {
    if let Some(int) = n.strip_suffix('.') {
        match iter.peek().map(|t| &t.token) {
            Some(Token::Period) => {
                iter.next();
                return vec![Tok::Number(int.to_string()), Tok::DotDot];
            }
            Some(Token::Number(next, _)) if next.starts_with('.') => {
                let next = next[1..].to_string();
                iter.next();
                return vec![Tok::Number(int.to_string()), Tok::DotDot, Tok::Number(next)];
            }
            _ => {}
        }
    }
    match n.strip_prefix('.') {
        Some(key) if matches!(previous, Some(Tok::Word { .. } | Tok::RBracket)) => {
            vec![Tok::Dot, Tok::Number(key.to_string())]
        }
        _ => vec![Tok::Number(n)],
    }
}

/// A token that stands for itself.
fn single(t: Token) -> Tok {
    match t {
        Token::Word(w) => Tok::Word { value: w.value, quoted: w.quote_style.is_some() },
        Token::SingleQuotedString(s) => Tok::Str(s),
        Token::Comma => Tok::Comma,
        Token::LParen => Tok::LParen,
        Token::RParen => Tok::RParen,
        Token::LBracket => Tok::LBracket,
        Token::RBracket => Tok::RBracket,
        Token::Period => Tok::Dot,
        Token::Mul => Tok::Star,
        Token::Plus => Tok::Plus,
        Token::Minus => Tok::Minus,
        Token::Div => Tok::Slash,
        Token::Eq | Token::DoubleEq => Tok::Eq,
        Token::Neq => Tok::Ne,
        Token::Lt => Tok::Lt,
        Token::LtEq => Tok::Le,
        Token::Gt => Tok::Gt,
        Token::GtEq => Tok::Ge,
        Token::SemiColon => Tok::Semicolon,
        other => Tok::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(sql: &str) -> Vec<Tok> {
        tokenize(sql).unwrap().into_iter().map(|s| s.tok).collect()
    }

    fn word(v: &str) -> Tok {
        Tok::Word { value: v.into(), quoted: false }
    }

    #[test]
    fn ranges_are_split_back_out() {
        assert_eq!(
            toks("[1..4]"),
            vec![Tok::LBracket, Tok::Number("1".into()), Tok::DotDot, Tok::Number("4".into()), Tok::RBracket, Tok::Eof]
        );
        assert_eq!(toks("a[2..-1]")[2..6], [Tok::Number("2".into()), Tok::DotDot, Tok::Minus, Tok::Number("1".into())]);
        assert_eq!(toks("a[x..y]")[2..5], [word("x"), Tok::DotDot, word("y")]);
    }

    #[test]
    fn emqx_specific_tokens() {
        assert_eq!(toks("topic =~ 't/#'"), vec![word("topic"), Tok::Match, Tok::Str("t/#".into()), Tok::Eof]);
        assert_eq!(toks("a.1")[..3], [word("a"), Tok::Dot, Tok::Number("1".into())]);
        assert_eq!(toks("3.14e4"), vec![Tok::Number("3.14e4".into()), Tok::Eof]);
        assert_eq!(toks("'^\\d+$'"), vec![Tok::Str("^\\d+$".into()), Tok::Eof], "no escape processing");
        assert_eq!(toks("a -- note\n b"), vec![word("a"), word("b"), Tok::Eof]);
        assert_eq!(toks("\"t/#\""), vec![Tok::Word { value: "t/#".into(), quoted: true }, Tok::Eof]);
        assert_eq!(toks("a <> b")[1], Tok::Ne);
        assert_eq!(toks("a != b")[1], Tok::Ne);
    }

    #[test]
    fn positions_are_one_based() {
        let t = tokenize("select\n  x").unwrap();
        assert_eq!((t[1].line, t[1].column), (2, 3));
    }
}
