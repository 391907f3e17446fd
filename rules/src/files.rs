//! Rule files: every `*.sql` file of the rules directory, each holding one or more statements.
//!
//! A rule's id comes from its file: `alerts.sql` holding one statement gives the rule `alerts`;
//! a file holding several gives `alerts_1`, `alerts_2`, ... in order.

use std::path::{Path, PathBuf};

use crate::ast::Statement;
use crate::{parse_file, ParseError};

/// A rule as loaded from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedRule {
    /// Its id: the file's name, numbered when the file holds several statements.
    pub id: String,
    /// The statement, as parsed.
    pub statement: Statement,
}

/// One file of the rules directory and what came of reading it.
#[derive(Debug)]
pub struct RuleFile {
    /// The file.
    pub path: PathBuf,
    /// Its rules, or why it could not be used.
    pub outcome: Result<Vec<LoadedRule>, FileError>,
}

/// Why a rule file could not be used; displays as `line L, column C: ...` or the I/O error.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The text is not rule SQL, or names a sink or table the config does not define.
    #[error("{0}")]
    Syntax(#[from] ParseError),
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Read(#[from] std::io::Error),
}

/// Reads every `*.sql` file of `dir`, in name order. Fails only if the directory cannot be listed.
pub fn load_dir(dir: &Path) -> std::io::Result<Vec<RuleFile>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "sql") && p.is_file())
        .collect();
    paths.sort();
    Ok(paths.into_iter().map(load_file).collect())
}

/// Reads and parses one rule file.
pub fn load_file(path: PathBuf) -> RuleFile {
    let outcome = std::fs::read_to_string(&path)
        .map_err(FileError::from)
        .and_then(|text| Ok(parse_file(&text)?))
        .map(|statements| with_ids(&path, statements));
    RuleFile { path, outcome }
}

fn with_ids(path: &Path, statements: Vec<Statement>) -> Vec<LoadedRule> {
    let stem = path.file_stem().map_or_else(|| "rule".into(), |s| s.to_string_lossy().into_owned());
    let single = statements.len() == 1;
    statements
        .into_iter()
        .enumerate()
        .map(|(i, statement)| LoadedRule {
            id: if single { stem.clone() } else { format!("{stem}_{}", i + 1) },
            statement,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_file_and_errors_stay_per_file() {
        let dir = std::env::temp_dir().join(format!("weir-rules-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("alerts.sql"), "SELECT a FROM \"t\"").unwrap();
        std::fs::write(dir.join("multi.sql"), "SELECT a FROM \"t\";\nINSERT INTO s SELECT b FROM \"u\"").unwrap();
        std::fs::write(dir.join("broken.sql"), "SELECT FROM").unwrap();
        std::fs::write(dir.join("notes.txt"), "not a rule").unwrap();
        let files = load_dir(&dir).unwrap();
        let names: Vec<String> =
            files.iter().map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["alerts.sql", "broken.sql", "multi.sql"]);
        let ids = |f: &RuleFile| -> Vec<String> { f.outcome.as_ref().unwrap().iter().map(|r| r.id.clone()).collect() };
        assert_eq!(ids(&files[0]), ["alerts"]);
        assert_eq!(ids(&files[2]), ["multi_1", "multi_2"]);
        assert!(matches!(&files[1].outcome, Err(FileError::Syntax(e)) if e.line == 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
