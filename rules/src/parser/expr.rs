//! The grammar of expressions, one function per level of precedence, lowest first.

use super::{is_keyword, is_reserved, Parser};
use crate::ast::*;
use crate::lexer::Tok;
use crate::ParseError;

impl Parser {
    /// An expression: its lowest level, OR.
    pub(super) fn expr(&mut self) -> Result<Expr, ParseError> {
        self.nested(Parser::or)
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let (mut left, mut links) = (self.and()?, 0);
        while self.eat_keyword("or") {
            self.chained(&mut links)?;
            left = Expr::Binary(BinaryOp::Or, Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let (mut left, mut links) = (self.not()?, 0);
        while self.eat_keyword("and") {
            self.chained(&mut links)?;
            left = Expr::Binary(BinaryOp::And, Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.eat_keyword("not") {
            return Ok(Expr::Unary(UnaryOp::Not, Box::new(self.nested(Parser::not)?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let left = self.additive()?;
        let negated = self.at_keyword("not") && is_keyword(self.peek_at(1), "in");
        if negated || self.at_keyword("in") {
            if negated {
                self.bump();
            }
            self.bump();
            self.expect(&Tok::LParen, "`(` after IN")?;
            let mut list = vec![self.expr()?];
            while self.eat(&Tok::Comma) {
                list.push(self.expr()?);
            }
            self.expect(&Tok::RParen, "`)` to close the IN list")?;
            return Ok(Expr::In { expr: Box::new(left), list, negated });
        }
        let op = match self.peek() {
            Tok::Eq => BinaryOp::Eq,
            Tok::Ne => BinaryOp::Ne,
            Tok::Lt => BinaryOp::Lt,
            Tok::Le => BinaryOp::Le,
            Tok::Gt => BinaryOp::Gt,
            Tok::Ge => BinaryOp::Ge,
            Tok::Match => BinaryOp::TopicMatch,
            _ => return Ok(left),
        };
        self.bump();
        let right = self.additive()?;
        Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
    }

    fn additive(&mut self) -> Result<Expr, ParseError> {
        let (mut left, mut links) = (self.multiplicative()?, 0);
        loop {
            let op = match self.peek() {
                Tok::Plus => BinaryOp::Add,
                Tok::Minus => BinaryOp::Sub,
                _ => return Ok(left),
            };
            self.bump();
            self.chained(&mut links)?;
            left = Expr::Binary(op, Box::new(left), Box::new(self.multiplicative()?));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, ParseError> {
        let (mut left, mut links) = (self.unary()?, 0);
        loop {
            let op = match self.peek() {
                Tok::Star => BinaryOp::Mul,
                Tok::Slash => BinaryOp::Div,
                // `div(a, b)` and `mod(a, b)` are calls, handled by `primary`.
                t if is_keyword(t, "div") && self.peek_at(1) != &Tok::LParen => BinaryOp::IntDiv,
                t if is_keyword(t, "mod") && self.peek_at(1) != &Tok::LParen => BinaryOp::Mod,
                _ => return Ok(left),
            };
            self.bump();
            self.chained(&mut links)?;
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat(&Tok::Plus) {
            return self.nested(Parser::unary);
        }
        if self.eat(&Tok::Minus) {
            return Ok(Expr::Unary(UnaryOp::Neg, Box::new(self.nested(Parser::unary)?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        match self.peek().clone() {
            Tok::Number(n) => self.number(&n),
            Tok::Str(s) => {
                self.bump();
                Ok(Expr::Literal(Literal::Str(s)))
            }
            Tok::LParen => {
                self.bump();
                let e = self.expr()?;
                self.expect(&Tok::RParen, "`)`")?;
                Ok(e)
            }
            Tok::LBracket => self.list(),
            Tok::Word { value, quoted } => self.word(value, quoted),
            _ => Err(self.error("expected an expression")),
        }
    }

    /// A number: an integer if it has digits alone, else a float.
    fn number(&mut self, n: &str) -> Result<Expr, ParseError> {
        let lit = if n.bytes().all(|b| b.is_ascii_digit()) {
            n.parse().map(Literal::Int).ok()
        } else {
            n.parse().map(Literal::Float).ok()
        };
        match lit {
            Some(l) => {
                self.bump();
                Ok(Expr::Literal(l))
            }
            None => Err(self.error("number out of range")),
        }
    }

    /// `[a, b, ...]` or `[a..b]`; the next token is `[`.
    fn list(&mut self) -> Result<Expr, ParseError> {
        self.bump();
        if self.eat(&Tok::RBracket) {
            return Ok(Expr::List(Vec::new()));
        }
        let first = self.expr()?;
        if self.eat(&Tok::DotDot) {
            let last = self.expr()?;
            self.expect(&Tok::RBracket, "`]` to close the range")?;
            return Ok(Expr::Range(Box::new(first), Box::new(last)));
        }
        let mut items = vec![first];
        while self.eat(&Tok::Comma) {
            items.push(self.expr()?);
        }
        self.expect(&Tok::RBracket, "`]` to close the list")?;
        Ok(Expr::List(items))
    }

    /// An expression that starts with a word: `true`, `false`, `CASE`, a call
    /// (`f(...)`, `Module.f(...)`) or a path.
    fn word(&mut self, value: String, quoted: bool) -> Result<Expr, ParseError> {
        if !quoted {
            for (word, literal) in [("true", true), ("false", false)] {
                if value.eq_ignore_ascii_case(word) {
                    self.bump();
                    return Ok(Expr::Literal(Literal::Bool(literal)));
                }
            }
            if value.eq_ignore_ascii_case("case") {
                self.bump();
                return self.case();
            }
            if self.peek_at(1) == &Tok::LParen {
                self.bump();
                return self.call(None, value);
            }
            // `Module.func(args)`
            if self.peek_at(1) == &Tok::Dot && self.peek_at(3) == &Tok::LParen {
                if let Tok::Word { value: func, .. } = self.peek_at(2).clone() {
                    self.bump();
                    self.bump();
                    self.bump();
                    return self.call(Some(value), func);
                }
            }
            if is_reserved(&value) {
                return Err(self.error("expected an expression"));
            }
        }
        self.bump();
        Ok(Expr::Path(self.path_from(value)?))
    }

    /// After the function name; the next token is `(`.
    fn call(&mut self, module: Option<String>, name: String) -> Result<Expr, ParseError> {
        self.expect(&Tok::LParen, "`(`")?;
        let mut args = Vec::new();
        // `count(*)`: an aggregate over rows, which takes no argument.
        if self.peek() == &Tok::Star && self.peek_at(1) == &Tok::RParen {
            self.bump();
        }
        if !self.eat(&Tok::RParen) {
            args.push(self.expr()?);
            while self.eat(&Tok::Comma) {
                args.push(self.expr()?);
            }
            self.expect(&Tok::RParen, "`)` to close the arguments")?;
        }
        Ok(Expr::Call { module, name, args })
    }

    /// After `CASE`.
    fn case(&mut self) -> Result<Expr, ParseError> {
        let operand = if self.at_keyword("when") { None } else { Some(Box::new(self.expr()?)) };
        let mut branches = Vec::new();
        while self.eat_keyword("when") {
            let cond = self.expr()?;
            self.expect_keyword("then")?;
            branches.push((cond, self.expr()?));
        }
        if branches.is_empty() {
            return Err(self.error("expected WHEN"));
        }
        let otherwise = if self.eat_keyword("else") { Some(Box::new(self.expr()?)) } else { None };
        self.expect_keyword("end")?;
        Ok(Expr::Case { operand, branches, otherwise })
    }
}
