//! `weir rule ...`: working with rule files without a running broker.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use weir_rules::files::{load_dir, RuleFile};

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
}

pub fn run(cmd: RuleCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RuleCommand::Check { dir } => check(&dir),
    }
}

fn check(dir: &Path) -> anyhow::Result<ExitCode> {
    let files = load_dir(dir).map_err(|e| anyhow::anyhow!("cannot read the rules directory {}: {e}", dir.display()))?;
    let (mut rules, mut errors) = (0, 0);
    for RuleFile { path, outcome } in &files {
        match outcome {
            Ok(loaded) => {
                rules += loaded.len();
                for r in loaded {
                    let sink = r
                        .statement
                        .sink
                        .as_deref()
                        .map_or(String::new(), |s| format!(" -> {s}"));
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
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
