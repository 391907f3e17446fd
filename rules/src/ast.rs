//! The syntax tree of a rule statement, as written: no name resolution, no types.

/// One statement of a rule file: an optional destination and the EMQX rule itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The sink of `INSERT INTO <sink> SELECT ...`; `None` for a bare `SELECT` (metrics and tests only).
    pub sink: Option<String>,
    /// The rule itself.
    pub rule: Rule,
    /// The line where the statement starts in its file (1-based), for messages.
    pub line: u64,
    /// The column where the statement starts (1-based).
    pub column: u64,
}

/// An EMQX rule: what it outputs, the topics it reads, and its condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// What it outputs: SELECT or FOREACH.
    pub projection: Projection,
    /// Topic filters and `$events/...` topics; a message matches if any entry does.
    pub from: Vec<String>,
    /// `WHERE`.
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
    /// The reference table's name, from `[tables.<name>]`.
    pub table: String,
    /// The name the matched row goes by in the rule.
    pub alias: String,
    /// The table's column compared with `key`.
    pub column: String,
    /// The expression on the message that the column must equal.
    pub key: Expr,
    /// `LEFT JOIN`: a message with no matching row goes on with `alias` undefined; an inner
    /// `JOIN` drops it.
    pub left: bool,
}

/// `GROUP BY` of a windowed rule: the grouping keys and the window.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupBy {
    /// The grouping keys, besides the window.
    pub keys: Vec<Expr>,
    /// The window.
    pub window: Window,
}

/// A time window over the messages' `timestamp`: `TUMBLINGWINDOW(ss, 10)` is a hopping window
/// whose hop is its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// How long a window lasts, in milliseconds.
    pub size_ms: u64,
    /// How far apart windows start, in milliseconds.
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

/// What a rule outputs for each message.
#[derive(Debug, Clone, PartialEq)]
pub enum Projection {
    /// `SELECT field, ...`
    Select(Vec<Field>),
    /// `FOREACH binding, ..., collection [DO field, ...] [INCASE cond]`: the last binding is the
    /// collection iterated over; the ones before it are aliases visible to what follows.
    Foreach {
        /// The aliases, then the collection.
        bindings: Vec<Field>,
        /// The DO list: the fields of each element's row (`item` is the element).
        each: Vec<Field>,
        /// The INCASE condition an element must meet.
        incase: Option<Expr>,
    },
}

/// One item of a SELECT (or FOREACH / DO) list.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// `*`: every column of the input.
    All,
    /// `expr [[AS] alias]`; the alias may be a path (`AS a.b[1]`).
    Expr {
        /// The value.
        expr: Expr,
        /// Where it goes in the output; the expression's own name when absent.
        alias: Option<Path>,
    },
}

/// `a.b[1].'c d'`, `c[-0]`, `x[1..2]`: a name followed by keys, indexes and ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// The name it starts from: a column or an alias.
    pub root: String,
    /// The steps after it, in order.
    pub segments: Vec<Segment>,
}

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// `.name`, `.'quoted'`, `."quoted"` or `.1`.
    Key(String),
    /// `[i]`: 1-based, negative from the end; `[-0]` (only as an AS target) appends.
    Index(Box<Expr>),
    /// `[a..b]`, inclusive, 1-based.
    Range(Box<Expr>, Box<Expr>),
}

/// A constant written in the rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `42`, `-7`.
    Int(i64),
    /// `1.5`, `1e3`.
    Float(f64),
    /// A single-quoted string, taken verbatim (EMQX does not process escapes).
    Str(String),
    /// `true`, `false`.
    Bool(bool),
}

/// An operator between two values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `or`.
    Or,
    /// `and`.
    And,
    /// `=`.
    Eq,
    /// `!=` or `<>`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `=~`: the left side, a topic name, matches the right side, a topic filter.
    TopicMatch,
    /// `+`: numbers added, or strings joined.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`: always a float division.
    Div,
    /// `div`: integer division.
    IntDiv,
    /// `mod`: remainder, sign of the dividend.
    Mod,
}

impl BinaryOp {
    /// How rules write it, as EMQX names its function.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "=",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::TopicMatch => "=~",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::IntDiv => "div",
            BinaryOp::Mod => "mod",
        }
    }
}

/// An operator on one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `not x`.
    Not,
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A constant.
    Literal(Literal),
    /// A column, an alias, or a path into either.
    Path(Path),
    /// `f(args)` or `module.f(args)`; names are case-sensitive as in EMQX.
    Call {
        /// The module, for `module.f(...)`.
        module: Option<String>,
        /// The function's name.
        name: String,
        /// Its arguments.
        args: Vec<Expr>,
    },
    /// `-x`, `not x`.
    Unary(UnaryOp, Box<Expr>),
    /// `a op b`.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `x [NOT] IN (a, b, ...)`
    In {
        /// The value looked for.
        expr: Box<Expr>,
        /// Where it is looked for.
        list: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `CASE [operand] WHEN .. THEN .. [ELSE ..] END`
    Case {
        /// The value compared with each WHEN, if any (else each WHEN is a condition).
        operand: Option<Box<Expr>>,
        /// The WHEN and THEN of each branch.
        branches: Vec<(Expr, Expr)>,
        /// ELSE.
        otherwise: Option<Box<Expr>>,
    },
    /// `[a, b, ...]`
    List(Vec<Expr>),
    /// `[a..b]`: the integers from a to b.
    Range(Box<Expr>, Box<Expr>),
}
