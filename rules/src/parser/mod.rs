//! The grammar of rule files: statements `[INSERT INTO <sink>] SELECT|FOREACH ... FROM ... [WHERE ...]`
//! separated by `;`, with EMQX's expression syntax. Recursive descent, one function per level of
//! precedence (low to high: OR, AND, NOT, comparison, `+ -`, `* / div mod`, unary minus).
//!
//! This module holds the cursor over the tokens and the statements' grammar; [`expr`] holds the
//! expressions'.

mod expr;

use crate::ast::*;
use crate::lexer::{tokenize, Spanned, Tok};
use crate::ParseError;

/// Words that end an expression or a list, so cannot be a bare (AS-less) alias or a name.
const RESERVED: &[&str] = &[
    "select", "foreach", "do", "incase", "from", "where", "as", "and", "or", "not", "in", "case", "when", "then",
    "else", "end", "div", "mod", "insert", "into", "true", "false", "join", "left", "inner", "on", "group", "by",
    "having",
];

/// Parses a rule file: zero or more statements separated by `;`.
pub fn parse_file(sql: &str) -> Result<Vec<Statement>, ParseError> {
    let mut p = Parser::new(sql)?;
    let mut statements = Vec::new();
    loop {
        while p.eat(&Tok::Semicolon) {}
        if p.peek() == &Tok::Eof {
            return Ok(statements);
        }
        statements.push(p.statement()?);
        if !p.eat(&Tok::Semicolon) && p.peek() != &Tok::Eof {
            return Err(p.error("expected `;` or the end of the file after the statement"));
        }
    }
}

/// Parses exactly one rule (`SELECT ...` or `FOREACH ...`), as the rule tester receives it.
pub fn parse_rule(sql: &str) -> Result<Rule, ParseError> {
    let mut p = Parser::new(sql)?;
    let rule = p.rule()?;
    p.eat(&Tok::Semicolon);
    if p.peek() != &Tok::Eof {
        return Err(p.error("unexpected text after the rule"));
    }
    Ok(rule)
}

/// How deeply an expression may nest (brackets, calls, operators chained): the tree is compiled,
/// run and dropped recursively, and rule text from a file or an API call must not exhaust the
/// stack.
pub const MAX_NESTING: usize = 64;

struct Parser {
    toks: Vec<Spanned>,
    pos: usize,
    /// The nesting of the expression being read, against [`MAX_NESTING`].
    depth: usize,
}

impl Parser {
    fn new(sql: &str) -> Result<Parser, ParseError> {
        Ok(Parser { toks: tokenize(sql)?, pos: 0, depth: 0 })
    }

    /// Runs `read` one level deeper, failing past [`MAX_NESTING`].
    fn nested<T>(&mut self, read: impl FnOnce(&mut Parser) -> Result<T, ParseError>) -> Result<T, ParseError> {
        self.depth += 1;
        let out = if self.depth > MAX_NESTING {
            Err(self.error(&format!("the expression nests deeper than {MAX_NESTING} levels")))
        } else {
            read(self)
        };
        self.depth -= 1;
        out
    }

    /// Counts one more operator in a chain (`a + b + c`), which nests the tree as deep.
    fn chained(&self, links: &mut usize) -> Result<(), ParseError> {
        *links += 1;
        if self.depth + *links > MAX_NESTING {
            return Err(self.error(&format!("the expression nests deeper than {MAX_NESTING} levels")));
        }
        Ok(())
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        let i = (self.pos + ahead).min(self.toks.len() - 1);
        &self.toks[i].tok
    }

    fn bump(&mut self) -> Tok {
        let t = self.toks[self.pos].tok.clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == t {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Tok, what: &str) -> Result<(), ParseError> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {what}")))
        }
    }

    fn error(&self, message: &str) -> ParseError {
        let at = &self.toks[self.pos];
        let found = match &at.tok {
            Tok::Eof => "the end of the text".to_string(),
            other => format!("`{}`", describe(other)),
        };
        ParseError { line: at.line, column: at.column, message: format!("{message}, found {found}") }
    }

    /// Whether the next token is the unquoted keyword `kw` (case-insensitive).
    fn at_keyword(&self, kw: &str) -> bool {
        is_keyword(self.peek(), kw)
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.at_keyword(kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.eat_keyword(kw) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {}", kw.to_uppercase())))
        }
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        let (line, column) = (self.toks[self.pos].line, self.toks[self.pos].column);
        let sink = if self.eat_keyword("insert") {
            self.expect_keyword("into")?;
            match self.bump() {
                Tok::Word { value, .. } => Some(value),
                _ => {
                    self.pos -= 1;
                    return Err(self.error("expected a sink name after INSERT INTO"));
                }
            }
        } else {
            None
        };
        let rule = self.rule()?;
        Ok(Statement { sink, rule, line, column })
    }

    fn rule(&mut self) -> Result<Rule, ParseError> {
        let projection = if self.eat_keyword("select") {
            Projection::Select(self.fields()?)
        } else if self.eat_keyword("foreach") {
            let bindings = self.fields()?;
            if bindings.iter().any(|f| matches!(f, Field::All)) {
                return Err(self.error("FOREACH needs an expression to iterate over, not `*`"));
            }
            let each = if self.eat_keyword("do") { self.fields()? } else { Vec::new() };
            let incase = if self.eat_keyword("incase") { Some(self.expr()?) } else { None };
            Projection::Foreach { bindings, each, incase }
        } else {
            return Err(self.error("expected SELECT or FOREACH"));
        };
        self.expect_keyword("from")?;
        let mut from = vec![self.topic()?];
        while self.eat(&Tok::Comma) {
            from.push(self.topic()?);
        }
        let mut joins = Vec::new();
        while let Some(join) = self.join()? {
            joins.push(join);
        }
        let filter = if self.eat_keyword("where") { Some(self.expr()?) } else { None };
        let group_by = if self.eat_keyword("group") {
            self.expect_keyword("by")?;
            Some(self.group_by()?)
        } else {
            None
        };
        let having = if self.eat_keyword("having") { Some(self.expr()?) } else { None };
        if having.is_some() && group_by.is_none() {
            return Err(self.error("HAVING needs GROUP BY with a window"));
        }
        if group_by.is_some() && matches!(projection, Projection::Foreach { .. }) {
            return Err(self.error("FOREACH cannot be grouped: use SELECT with GROUP BY"));
        }
        let mut rule =
            Rule { projection, from, filter, joins, group_by, having, payload_keys: None, payload_aliased: false };
        rule.payload_keys = rule.read_payload_keys();
        rule.payload_aliased = rule.aliases_payload();
        Ok(rule)
    }

    /// `[LEFT | INNER] JOIN <table> [AS] <alias> ON <alias>.<column> = <expr>` (the sides of
    /// `=` either way round), or `None` if no JOIN follows.
    fn join(&mut self) -> Result<Option<Join>, ParseError> {
        let left = self.eat_keyword("left");
        if !left {
            self.eat_keyword("inner");
        }
        if !self.eat_keyword("join") {
            return if left { Err(self.error("expected JOIN after LEFT")) } else { Ok(None) };
        }
        let table = self.name("a reference table name after JOIN")?;
        self.eat_keyword("as");
        let alias = if is_name(self.peek()) { self.name("an alias")? } else { table.clone() };
        self.expect_keyword("on")?;
        let on = self.expr()?;
        let column_of = |e: &Expr| match e {
            Expr::Path(p) if p.root == alias && p.segments.len() == 1 => match &p.segments[0] {
                Segment::Key(k) => Some(k.clone()),
                _ => None,
            },
            _ => None,
        };
        let Expr::Binary(BinaryOp::Eq, a, b) = on else {
            return Err(self.error(&format!("JOIN ... ON must be `{alias}.<column> = <expression>`")));
        };
        let (column, key) = match (column_of(&a), column_of(&b)) {
            (Some(c), _) => (c, *b),
            (None, Some(c)) => (c, *a),
            (None, None) => {
                return Err(self.error(&format!("JOIN ... ON must compare a column of `{alias}` (`{alias}.<column>`)")))
            }
        };
        Ok(Some(Join { table, alias, column, key, left }))
    }

    /// A plain (unquoted or double-quoted) name.
    fn name(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Word { value, quoted } if quoted || !is_reserved(&value) => {
                self.bump();
                Ok(value)
            }
            _ => Err(self.error(&format!("expected {what}"))),
        }
    }

    /// `GROUP BY` keys and exactly one window, in any order.
    fn group_by(&mut self) -> Result<GroupBy, ParseError> {
        let mut keys = Vec::new();
        let mut window = None;
        loop {
            let kind = match self.peek() {
                Tok::Word { value, quoted: false } if self.peek_at(1) == &Tok::LParen => value.to_lowercase(),
                _ => String::new(),
            };
            if kind == "tumblingwindow" || kind == "hoppingwindow" {
                if window.is_some() {
                    return Err(self.error("only one window per GROUP BY"));
                }
                self.bump();
                self.bump();
                let unit = self.name("a time unit (dd, hh, mi, ss or ms)")?;
                let unit_ms = match unit.to_lowercase().as_str() {
                    "dd" => 86_400_000,
                    "hh" => 3_600_000,
                    "mi" => 60_000,
                    "ss" => 1_000,
                    "ms" => 1,
                    _ => {
                        self.pos -= 1;
                        return Err(self.error("expected a time unit: dd, hh, mi, ss or ms"));
                    }
                };
                self.expect(&Tok::Comma, "`,` and the window size")?;
                let size = self.positive("the window size")? * unit_ms;
                let hop = if kind == "hoppingwindow" {
                    self.expect(&Tok::Comma, "`,` and the hop (HOPPINGWINDOW(unit, size, hop))")?;
                    self.positive("the hop")? * unit_ms
                } else {
                    size
                };
                self.expect(&Tok::RParen, "`)`")?;
                window = Some(Window { size_ms: size, hop_ms: hop });
            } else {
                keys.push(self.expr()?);
            }
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        let window = window.ok_or_else(|| {
            self.error("GROUP BY needs a window, as TUMBLINGWINDOW(ss, 10) or HOPPINGWINDOW(ss, 10, 5)")
        })?;
        Ok(GroupBy { keys, window })
    }

    fn positive(&mut self, what: &str) -> Result<u64, ParseError> {
        match self.peek().clone() {
            Tok::Number(n) => match n.parse::<u64>() {
                Ok(v) if v > 0 => {
                    self.bump();
                    Ok(v)
                }
                _ => Err(self.error(&format!("{what} must be a positive integer"))),
            },
            _ => Err(self.error(&format!("expected {what}"))),
        }
    }

    fn topic(&mut self) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Word { value, quoted: true } | Tok::Str(value) => {
                self.bump();
                Ok(value)
            }
            _ => Err(self.error("expected a topic in quotes, as \"t/#\" or 't/#'")),
        }
    }

    fn fields(&mut self) -> Result<Vec<Field>, ParseError> {
        let mut fields = vec![self.field()?];
        while self.eat(&Tok::Comma) {
            fields.push(self.field()?);
        }
        Ok(fields)
    }

    fn field(&mut self) -> Result<Field, ParseError> {
        if self.eat(&Tok::Star) {
            return Ok(Field::All);
        }
        let expr = self.expr()?;
        let alias = if self.eat_keyword("as") || is_name(self.peek()) { Some(self.path()?) } else { None };
        Ok(Field::Expr { expr, alias })
    }

    fn path(&mut self) -> Result<Path, ParseError> {
        let root = self.name("a name")?;
        self.path_from(root)
    }

    fn path_from(&mut self, root: String) -> Result<Path, ParseError> {
        let mut segments = Vec::new();
        loop {
            if self.eat(&Tok::Dot) {
                match self.bump() {
                    Tok::Word { value, .. } | Tok::Str(value) => segments.push(Segment::Key(value)),
                    Tok::Number(n) if n.bytes().all(|b| b.is_ascii_digit()) => segments.push(Segment::Key(n)),
                    _ => {
                        self.pos -= 1;
                        return Err(self.error("expected a key after `.`"));
                    }
                }
            } else if self.eat(&Tok::LBracket) {
                let first = self.expr()?;
                if self.eat(&Tok::DotDot) {
                    let last = self.expr()?;
                    segments.push(Segment::Range(Box::new(first), Box::new(last)));
                } else {
                    segments.push(Segment::Index(Box::new(first)));
                }
                self.expect(&Tok::RBracket, "`]`")?;
            } else {
                return Ok(Path { root, segments });
            }
        }
    }
}

fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|k| k.eq_ignore_ascii_case(word))
}

fn is_keyword(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Word { value, quoted: false } if value.eq_ignore_ascii_case(kw))
}

/// A token that can start an AS-less alias.
fn is_name(t: &Tok) -> bool {
    match t {
        Tok::Word { quoted: true, .. } => true,
        Tok::Word { value, quoted: false } => !is_reserved(value),
        _ => false,
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word { value, quoted: true } => format!("\"{value}\""),
        Tok::Word { value, .. } | Tok::Number(value) | Tok::Other(value) => value.clone(),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Comma => ",".into(),
        Tok::LParen => "(".into(),
        Tok::RParen => ")".into(),
        Tok::LBracket => "[".into(),
        Tok::RBracket => "]".into(),
        Tok::Dot => ".".into(),
        Tok::DotDot => "..".into(),
        Tok::Star => "*".into(),
        Tok::Plus => "+".into(),
        Tok::Minus => "-".into(),
        Tok::Slash => "/".into(),
        Tok::Eq => "=".into(),
        Tok::Ne => "!=".into(),
        Tok::Lt => "<".into(),
        Tok::Le => "<=".into(),
        Tok::Gt => ">".into(),
        Tok::Ge => ">=".into(),
        Tok::Match => "=~".into(),
        Tok::Semicolon => ";".into(),
        Tok::Eof => "end".into(),
    }
}
