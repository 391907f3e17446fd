//! `weir rule ...`: working with rule files without a running broker.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use weir_rules::files::{load_dir, RuleFile};
use weir_rules::tester::{test_rule, TestOutcome};
use weir_rules::value::Value;

#[derive(Subcommand)]
pub enum RuleCommand {
    /// Check the rule files of a directory (every *.sql file) without starting a broker.
    ///
    /// Prints each file's rules with their ids (from the file name: alerts.sql gives `alerts`,
    /// or `alerts_1`, `alerts_2`... when it holds several statements), and each error as
    /// FILE:LINE:COLUMN: message. Exits with status 1 if any file has an error.
    Check {
        /// The rules directory.
        #[arg(default_value = "sql")]
        dir: PathBuf,
    },
    /// Run a rule on a made-up message, as EMQX's rule tester (POST /api/v5/rule_test) does.
    ///
    /// The context is a JSON object of message columns over EMQX's defaults (topic "t/a",
    /// clientid "c_emqx", username "u_emqx", qos 1, payload {"msg": "hello"}). Prints the output
    /// (an object, or an array for FOREACH) and exits 0; prints
    /// {"code":"NOT_MATCH","message":"SQL Not Match"} and exits 1 when the topic does not match
    /// FROM or WHERE is false; prints {"code":"BAD_REQUEST","message":...} and exits 2 when the
    /// SQL is invalid or the rule fails on the message.
    #[command(
        after_help = "Example:\n  weir rule test --sql 'SELECT payload.msg AS msg FROM \"t/#\"' --context '{\"payload\": \"{\\\"msg\\\": \\\"hi\\\"}\"}'"
    )]
    Test {
        /// The rule, e.g. SELECT payload.temp AS t FROM "sensors/#" WHERE payload.temp > 30
        #[arg(long)]
        sql: String,
        /// Message columns as a JSON object, e.g. {"topic": "sensors/1", "payload": "{\"temp\": 31}"}
        #[arg(long, default_value = "{}")]
        context: String,
    },
}

pub fn run(cmd: RuleCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RuleCommand::Check { dir } => check(&dir),
        RuleCommand::Test { sql, context } => test(&sql, &context),
    }
}

fn test(sql: &str, context: &str) -> anyhow::Result<ExitCode> {
    let Some(context) = Value::from_json(context.as_bytes()) else {
        println!("{}", reply("BAD_REQUEST", "--context is not valid JSON", None));
        return Ok(ExitCode::from(2));
    };
    Ok(match test_rule(sql, &context) {
        TestOutcome::Output(v) => {
            println!("{}", v.to_json()?);
            ExitCode::SUCCESS
        }
        TestOutcome::NotMatch => {
            println!("{}", reply("NOT_MATCH", "SQL Not Match", None));
            ExitCode::from(1)
        }
        TestOutcome::BadRequest(message) => {
            println!("{}", reply("BAD_REQUEST", &message, None));
            ExitCode::from(2)
        }
        TestOutcome::Failed(failure) => {
            println!("{}", reply("BAD_REQUEST", &failure.emqx_message(), Some(&failure.to_string())));
            ExitCode::from(2)
        }
    })
}

/// The API's answer to a failed test: EMQX's `code` and `message`, and Weir's words as `detail`.
fn reply(code: &str, message: &str, detail: Option<&str>) -> String {
    let body = Value::Map(
        [("code", code), ("message", message)]
            .into_iter()
            .chain(detail.map(|d| ("detail", d)))
            .map(|(k, v)| (k.to_string(), Value::Str(v.to_string())))
            .collect(),
    );
    body.to_json().unwrap_or_default()
}

fn check(dir: &Path) -> anyhow::Result<ExitCode> {
    let files = load_dir(dir).map_err(|e| anyhow::anyhow!("cannot read the rules directory {}: {e}", dir.display()))?;
    let (mut rules, mut errors) = (0, 0);
    for RuleFile { path, outcome } in &files {
        match outcome {
            Ok(loaded) => {
                rules += loaded.len();
                for r in loaded {
                    let sink = r.statement.sink.as_deref().map_or(String::new(), |s| format!(" -> {s}"));
                    println!("{}: rule {}{sink}", path.display(), r.id);
                }
            }
            Err(weir_rules::files::FileError::Syntax(e)) => {
                errors += 1;
                println!("{}:{}:{}: {}", path.display(), e.line, e.column, e.message);
            }
            Err(e) => {
                errors += 1;
                println!("{}: {e}", path.display());
            }
        }
    }
    println!(
        "checked {} file{}: {rules} rule{}, {errors} error{}",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        if rules == 1 { "" } else { "s" },
        if errors == 1 { "" } else { "s" }
    );
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
