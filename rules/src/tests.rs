//! Parser tests, written from `shared/reference/emqx-rule-sql.md`: every statement form and
//! expression of the dialect, and errors that say where.

use crate::ast::*;
use crate::{parse_file, parse_rule};

fn path(root: &str, keys: &[&str]) -> Expr {
    Expr::Path(Path { root: root.into(), segments: keys.iter().map(|k| Segment::Key((*k).into())).collect() })
}

fn int(i: i64) -> Expr {
    Expr::Literal(Literal::Int(i))
}

fn string(s: &str) -> Expr {
    Expr::Literal(Literal::Str(s.into()))
}

fn bin(op: BinaryOp, l: Expr, r: Expr) -> Expr {
    Expr::Binary(op, Box::new(l), Box::new(r))
}

fn fields(rule: &Rule) -> &[Field] {
    match &rule.projection {
        Projection::Select(f) => f,
        Projection::Foreach { .. } => panic!("not a SELECT"),
    }
}

fn select_one(sql: &str) -> Expr {
    let rule = parse_rule(&format!("SELECT {sql} FROM \"t/#\"")).unwrap_or_else(|e| panic!("{sql}: {e}"));
    match &fields(&rule)[0] {
        Field::Expr { expr, .. } => expr.clone(),
        Field::All => panic!("*"),
    }
}

#[test]
fn select_from_where() {
    let rule = parse_rule("SELECT * FROM \"t/#\" WHERE payload.temp > 30").unwrap();
    assert_eq!(fields(&rule), &[Field::All]);
    assert_eq!(rule.from, vec!["t/#".to_string()]);
    assert_eq!(rule.filter, Some(bin(BinaryOp::Gt, path("payload", &["temp"]), int(30))));
}

#[test]
fn keywords_are_case_insensitive_and_topics_take_either_quote() {
    let rule = parse_rule("select clientid from 't/1', \"$events/client_connected\" where qos = 1").unwrap();
    assert_eq!(rule.from, vec!["t/1".to_string(), "$events/client_connected".to_string()]);
    let rule = parse_rule("Select a From \"t\"").unwrap();
    assert_eq!(fields(&rule).len(), 1);
}

#[test]
fn aliases_with_and_without_as_and_as_paths() {
    let rule = parse_rule("SELECT payload.cmd as cmd, cmd.info info, 1 AS a.b[1].c, 2 as c[-0] FROM \"t\"").unwrap();
    let aliases: Vec<Option<Path>> = fields(&rule)
        .iter()
        .map(|f| match f {
            Field::Expr { alias, .. } => alias.clone(),
            Field::All => None,
        })
        .collect();
    assert_eq!(aliases[0].as_ref().unwrap().root, "cmd");
    assert_eq!(aliases[1].as_ref().unwrap().root, "info");
    assert_eq!(
        aliases[2],
        Some(Path {
            root: "a".into(),
            segments: vec![Segment::Key("b".into()), Segment::Index(Box::new(int(1))), Segment::Key("c".into())]
        })
    );
    // `-0` stays distinguishable from `0`: it means "append" as an AS target.
    assert_eq!(
        aliases[3].as_ref().unwrap().segments,
        vec![Segment::Index(Box::new(Expr::Unary(UnaryOp::Neg, Box::new(int(0)))))]
    );
}

#[test]
fn paths_keys_indexes_and_ranges() {
    assert_eq!(select_one("pub_props.'User-Property'.foo"), path("pub_props", &["User-Property", "foo"]));
    assert_eq!(
        select_one("payload.a[-1]"),
        Expr::Path(Path {
            root: "payload".into(),
            segments: vec![
                Segment::Key("a".into()),
                Segment::Index(Box::new(Expr::Unary(UnaryOp::Neg, Box::new(int(1)))))
            ]
        })
    );
    assert_eq!(
        select_one("payload.x[2..-1]"),
        Expr::Path(Path {
            root: "payload".into(),
            segments: vec![
                Segment::Key("x".into()),
                Segment::Range(Box::new(int(2)), Box::new(Expr::Unary(UnaryOp::Neg, Box::new(int(1)))))
            ]
        })
    );
    assert_eq!(
        select_one("a[i]"),
        Expr::Path(Path { root: "a".into(), segments: vec![Segment::Index(Box::new(path("i", &[])))] })
    );
    assert_eq!(select_one("a.1"), path("a", &["1"]));
    assert_eq!(select_one("\"topic\""), path("topic", &[]), "double quotes make a name");
}

#[test]
fn literals() {
    assert_eq!(select_one("'^\\d+$'"), string("^\\d+$"));
    assert_eq!(select_one("3.14e4"), Expr::Literal(Literal::Float(31400.0)));
    assert_eq!(select_one("true"), Expr::Literal(Literal::Bool(true)));
    assert_eq!(select_one("[]"), Expr::List(vec![]));
    assert_eq!(
        select_one("[payload.a, \"topic\", 'c']"),
        Expr::List(vec![path("payload", &["a"]), path("topic", &[]), string("c")])
    );
    assert_eq!(select_one("[1..4]"), Expr::Range(Box::new(int(1)), Box::new(int(4))));
}

#[test]
fn precedence() {
    // a or b and not c = d + e * f  ==  a or (b and (not (c = (d + (e * f)))))
    let e = select_one("a or b and not c = d + e * f");
    let mul = bin(BinaryOp::Mul, path("e", &[]), path("f", &[]));
    let add = bin(BinaryOp::Add, path("d", &[]), mul);
    let eq = bin(BinaryOp::Eq, path("c", &[]), add);
    let not = Expr::Unary(UnaryOp::Not, Box::new(eq));
    let and = bin(BinaryOp::And, path("b", &[]), not);
    assert_eq!(e, bin(BinaryOp::Or, path("a", &[]), and));
    // Left associative: 10 - 2 - 3 = (10 - 2) - 3; div and mod bind like *.
    assert_eq!(select_one("10 - 2 - 3"), bin(BinaryOp::Sub, bin(BinaryOp::Sub, int(10), int(2)), int(3)));
    assert_eq!(
        select_one("7 div 2 + 7 mod 2"),
        bin(BinaryOp::Add, bin(BinaryOp::IntDiv, int(7), int(2)), bin(BinaryOp::Mod, int(7), int(2)))
    );
}

#[test]
fn calls_modules_in_case_and_topic_match() {
    assert_eq!(
        select_one("upper(payload.name)"),
        Expr::Call { module: None, name: "upper".into(), args: vec![path("payload", &["name"])] }
    );
    assert_eq!(select_one("div(7, 2)"), Expr::Call { module: None, name: "div".into(), args: vec![int(7), int(2)] });
    assert_eq!(select_one("map_new()"), Expr::Call { module: None, name: "map_new".into(), args: vec![] });
    assert!(matches!(select_one("mymod.f(1)"), Expr::Call { module: Some(m), .. } if m == "mymod"));
    assert_eq!(select_one("topic =~ 't/#'"), bin(BinaryOp::TopicMatch, path("topic", &[]), string("t/#")));
    assert_eq!(
        select_one("qos not in (1, 2)"),
        Expr::In { expr: Box::new(path("qos", &[])), list: vec![int(1), int(2)], negated: true }
    );
    assert_eq!(
        select_one("CASE WHEN a > 1 THEN 'big' ELSE 'small' END"),
        Expr::Case {
            operand: None,
            branches: vec![(bin(BinaryOp::Gt, path("a", &[]), int(1)), string("big"))],
            otherwise: Some(Box::new(string("small")))
        }
    );
    assert!(matches!(
        select_one("case qos when 1 then 'one' when 2 then 'two' end"),
        Expr::Case { operand: Some(_), ref branches, otherwise: None } if branches.len() == 2
    ));
}

#[test]
fn foreach_do_incase() {
    let rule = parse_rule(
        "FOREACH payload.sensors as s DO s.name as name, clientid INCASE s.idx > 1 FROM \"t/#\" WHERE qos >= 1",
    )
    .unwrap();
    match rule.projection {
        Projection::Foreach { bindings, each, incase } => {
            assert_eq!(bindings.len(), 1);
            assert_eq!(each.len(), 2);
            assert!(incase.is_some());
        }
        Projection::Select(_) => panic!("expected FOREACH"),
    }
    assert!(rule.filter.is_some());
    // Bindings before the collection, no DO, no INCASE.
    let rule = parse_rule("FOREACH json_decode(payload) as p, p.list FROM \"t\"").unwrap();
    assert!(
        matches!(rule.projection, Projection::Foreach { ref bindings, ref each, incase: None } if bindings.len() == 2 && each.is_empty())
    );
}

#[test]
fn rule_files_hold_statements_with_sinks() {
    let file = "-- telemetry rules\nINSERT INTO warehouse SELECT payload.temp as t FROM \"sensors/#\";\n\nSELECT * FROM \"x\";\n";
    let statements = parse_file(file).unwrap();
    assert_eq!(statements.len(), 2);
    assert_eq!(statements[0].sink.as_deref(), Some("warehouse"));
    assert_eq!((statements[0].line, statements[0].column), (2, 1));
    assert_eq!(statements[1].sink, None);
    assert_eq!(statements[1].line, 4);
    assert!(parse_file("  -- nothing here\n").unwrap().is_empty());
}

#[test]
fn errors_say_where_and_what() {
    let e = parse_rule("SELECT a FROM t/#").unwrap_err();
    assert_eq!((e.line, e.column), (1, 15));
    assert!(e.message.contains("topic in quotes"), "{e}");

    let e = parse_file("SELECT a FROM \"t\";\nSELECT upper(a FROM \"t\"").unwrap_err();
    assert_eq!((e.line, e.column), (2, 16));
    assert!(e.to_string().starts_with("line 2, column 16:"), "{e}");

    let e = parse_rule("SELECT a").unwrap_err();
    assert!(e.message.contains("expected FROM") && e.message.contains("end of the text"), "{e}");

    let e = parse_rule("SELECT CASE WHEN a THEN 1 FROM \"t\"").unwrap_err();
    assert!(e.message.contains("expected END"), "{e}");

    let e = parse_rule("SELECT a FROM \"t\" WHERE").unwrap_err();
    assert!(e.message.contains("expected an expression"), "{e}");

    let e = parse_rule("SELECT 99999999999999999999 FROM \"t\"").unwrap_err();
    assert!(e.message.contains("out of range"), "{e}");
}

#[test]
fn nesting_has_a_bound_that_says_where() {
    for (deep, what) in [
        (format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000)), "brackets"),
        (format!("{}1", "- ".repeat(100_000)), "unary minus"),
        (format!("{}true", "NOT ".repeat(100_000)), "NOT"),
        (vec!["1"; 100_000].join(" + "), "a chain of +"),
        (vec!["a"; 100_000].join(" AND "), "a chain of AND"),
        (format!("{}1{}", "abs(".repeat(100_000), ")".repeat(100_000)), "calls"),
    ] {
        let e = parse_rule(&format!("SELECT {deep} FROM \"t\"")).unwrap_err();
        assert!(e.message.contains("nests deeper than 64"), "{what}: {e}");
        assert_eq!(e.line, 1, "{what}");
    }
    let fine = format!("{}1{}", "(".repeat(60), ")".repeat(60));
    assert_eq!(select_one(&fine), int(1));
    select_one(&vec!["1"; 60].join(" + "));
}
