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
    /// `JOIN <table> [AS] <alias> ON <alias>.<column> = <expr>`: reference-table lookups.
    pub joins: Vec<Join>,
    /// `GROUP BY <keys>, TUMBLINGWINDOW(...)`: a windowed aggregation.
    pub group_by: Option<GroupBy>,
    /// `HAVING`: a condition on a window's output rows.
    pub having: Option<Expr>,
    /// The top-level payload keys the rule's paths read (`payload.temp` reads `temp`), so that
    /// the payload is decoded into those alone; `None` when a path needs all of it (`payload[1]`).
    pub payload_keys: Option<Vec<String>>,
    /// Whether an alias is named `payload`, hiding the message's own payload from later
    /// expressions; when not, the payload is looked up once per message.
    pub payload_aliased: bool,
}

impl Rule {
    /// Whether a SELECT, FOREACH or DO alias, or a JOIN alias, is named `payload`.
    pub fn aliases_payload(&self) -> bool {
        let fields = match &self.projection {
            Projection::Select(fields) => fields.iter().chain(&[]),
            Projection::Foreach { bindings, each, .. } => bindings.iter().chain(each),
        };
        let mut roots = fields.filter_map(|f| match f {
            Field::Expr { alias: Some(p), .. } => Some(p.root.as_str()),
            _ => None,
        });
        roots.any(|r| r == "payload") || self.joins.iter().any(|j| j.alias == "payload")
    }

    /// The top-level payload keys every expression of the rule reads; `None` if some path
    /// needs the whole payload. Computed once, when the rule is parsed.
    pub fn read_payload_keys(&self) -> Option<Vec<String>> {
        let mut keys = Some(Vec::new());
        let fields = match &self.projection {
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
        let incase = match &self.projection {
            Projection::Foreach { incase, .. } => incase.as_ref(),
            Projection::Select(_) => None,
        };
        let group_keys = self.group_by.iter().flat_map(|g| &g.keys);
        let join_keys = self.joins.iter().map(|j| &j.key);
        let others = [self.filter.as_ref(), incase, self.having.as_ref()].into_iter().flatten();
        others.chain(group_keys).chain(join_keys).for_each(|e| payload_reads(e, &mut keys));
        keys
    }
}

/// A reference-table lookup: the row of `table` whose `column` equals `key` (evaluated on the
/// message) is visible to the rule as `alias`.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub table: String,
    pub alias: String,
    pub column: String,
    pub key: Expr,
    /// `LEFT JOIN`: a message with no matching row goes on with `alias` undefined; an inner
    /// `JOIN` drops it.
    pub left: bool,
}

/// `GROUP BY` of a windowed rule: the grouping keys and the window.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupBy {
    pub keys: Vec<Expr>,
    pub window: Window,
}

/// A time window over the messages' `timestamp`: `TUMBLINGWINDOW(ss, 10)` is a hopping window
/// whose hop is its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub size_ms: u64,
    pub hop_ms: u64,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
