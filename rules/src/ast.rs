//! The syntax tree of a rule statement, as written: no name resolution, no types.

/// One statement of a rule file: an optional destination and the EMQX rule itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The sink of `INSERT INTO <sink> SELECT ...`; `None` for a bare `SELECT` (metrics and tests only).
    pub sink: Option<String>,
    pub rule: Rule,
    /// Where the statement starts in its file (1-based), for messages and stable rule ids.
    pub line: u64,
    pub column: u64,
}

/// An EMQX rule: what it outputs, the topics it reads, and its condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub projection: Projection,
    /// Topic filters and `$events/...` topics; a message matches if any entry does.
    pub from: Vec<String>,
    pub filter: Option<Expr>,
    /// The top-level payload keys the rule's paths read (`payload.temp` reads `temp`), so that
    /// the payload is decoded into those alone; `None` when a path needs all of it (`payload[1]`).
    pub payload_keys: Option<Vec<String>>,
}

impl Rule {
    pub fn new(projection: Projection, from: Vec<String>, filter: Option<Expr>) -> Rule {
        let mut keys = Some(Vec::new());
        let fields = match &projection {
            Projection::Select(fields) => fields.iter().chain(&[]),
            Projection::Foreach { bindings, each, .. } => bindings.iter().chain(each),
        };
        for field in fields {
            if let Field::Expr { expr, alias } = field {
                payload_reads(expr, &mut keys);
                let indexes = alias.iter().flat_map(|p| &p.segments);
                indexes.for_each(|s| segment_reads(s, &mut keys));
            }
        }
        let conditions = [
            filter.as_ref(),
            if let Projection::Foreach { incase, .. } = &projection { incase.as_ref() } else { None },
        ];
        conditions.into_iter().flatten().for_each(|c| payload_reads(c, &mut keys));
        Rule { projection, from, filter, payload_keys: keys }
    }
}

/// Adds the payload keys `e` reads to `keys`; `None` once something needs the whole payload.
fn payload_reads(e: &Expr, keys: &mut Option<Vec<String>>) {
    match e {
        Expr::Literal(_) => {}
        Expr::Path(p) => {
            if p.root == "payload" {
                match (p.segments.first(), keys.as_mut()) {
                    (None, _) | (_, None) => {}
                    (Some(Segment::Key(k)), Some(list)) => {
                        if !list.contains(k) {
                            list.push(k.clone());
                        }
                    }
                    (Some(_), Some(_)) => *keys = None,
                }
            }
            p.segments.iter().for_each(|s| segment_reads(s, keys));
        }
        Expr::Call { args: items, .. } | Expr::List(items) => items.iter().for_each(|a| payload_reads(a, keys)),
        Expr::Unary(_, a) => payload_reads(a, keys),
        Expr::Binary(_, a, b) | Expr::Range(a, b) => {
            payload_reads(a, keys);
            payload_reads(b, keys);
        }
        Expr::In { expr, list, .. } => {
            payload_reads(expr, keys);
            list.iter().for_each(|a| payload_reads(a, keys));
        }
        Expr::Case { operand, branches, otherwise } => {
            operand.iter().chain(otherwise).for_each(|a| payload_reads(a, keys));
            for (when, then) in branches {
                payload_reads(when, keys);
                payload_reads(then, keys);
            }
        }
    }
}

fn segment_reads(s: &Segment, keys: &mut Option<Vec<String>>) {
    match s {
        Segment::Key(_) => {}
        Segment::Index(i) => payload_reads(i, keys),
        Segment::Range(a, b) => {
            payload_reads(a, keys);
            payload_reads(b, keys);
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Projection {
    /// `SELECT field, ...`
    Select(Vec<Field>),
    /// `FOREACH binding, ..., collection [DO field, ...] [INCASE cond]`: the last binding is the
    /// collection iterated over; the ones before it are aliases visible to what follows.
    Foreach { bindings: Vec<Field>, each: Vec<Field>, incase: Option<Expr> },
}

/// One item of a SELECT (or FOREACH / DO) list.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// `*`: every column of the input.
    All,
    /// `expr [[AS] alias]`; the alias may be a path (`AS a.b[1]`).
    Expr { expr: Expr, alias: Option<Path> },
}

/// `a.b[1].'c d'`, `c[-0]`, `x[1..2]`: a name followed by keys, indexes and ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub root: String,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// `.name`, `.'quoted'`, `."quoted"` or `.1`.
    Key(String),
    /// `[i]`: 1-based, negative from the end; `[-0]` (only as an AS target) appends.
    Index(Box<Expr>),
    /// `[a..b]`, inclusive, 1-based.
    Range(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Int(i64),
    Float(f64),
    /// A single-quoted string, taken verbatim (EMQX does not process escapes).
    Str(String),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `=~`: the left side, a topic name, matches the right side, a topic filter.
    TopicMatch,
    Add,
    Sub,
    Mul,
    Div,
    /// `div`: integer division.
    IntDiv,
    /// `mod`: remainder, sign of the dividend.
    Mod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Literal),
    /// A column, an alias, or a path into either.
    Path(Path),
    /// `f(args)` or `module.f(args)`; names are case-sensitive as in EMQX.
    Call {
        module: Option<String>,
        name: String,
        args: Vec<Expr>,
    },
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `x [NOT] IN (a, b, ...)`
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    /// `CASE [operand] WHEN .. THEN .. [ELSE ..] END`
    Case {
        operand: Option<Box<Expr>>,
        branches: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    /// `[a, b, ...]`
    List(Vec<Expr>),
    /// `[a..b]`: the integers from a to b.
    Range(Box<Expr>, Box<Expr>),
}
