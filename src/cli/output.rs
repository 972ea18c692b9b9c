//! Where a command's machine-readable output goes (`--json`, `--csv`: a file or `-` for
//! standard output), checked before any work starts so that a path that cannot be written
//! is refused at once instead of after a whole run; and text from the user's input made
//! safe to print on a terminal.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::CliError;

/// A checked destination.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// `-`: standard output.
    Stdout,
    /// A file whose folder exists and which this process may write.
    File(PathBuf),
}

/// A destination that cannot be written; names the flag, the path and why.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {}: cannot write the report there: {reason}", path.display())]
pub struct OutputError {
    pub flag: &'static str,
    pub path: PathBuf,
    pub reason: String,
}

/// Two outputs asked for standard output, where they would interleave.
#[derive(Debug, thiserror::Error)]
#[error("{0} - and {1} -: only one output can go to standard output")]
pub struct SharedStdout(pub &'static str, pub &'static str);

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Stdout => write!(f, "standard output"),
            Output::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl Output {
    /// Checks `path` (given with `flag`) by opening it for writing as the output will be
    /// written: a file that did not exist is created and removed again, one that exists is
    /// opened without truncating it, so a failed check or a failed run leaves nothing behind.
    pub fn check(flag: &'static str, path: &Path) -> Result<Output, OutputError> {
        if path.as_os_str() == "-" {
            return Ok(Output::Stdout);
        }
        let refused = |reason: String| OutputError {
            flag,
            path: path.to_path_buf(),
            reason,
        };
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !parent.is_dir() {
            return Err(refused(format!("no folder {}", parent.display())));
        }
        if path.is_dir() {
            return Err(refused("it is a folder".into()));
        }
        let open = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path);
        let created = match open {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| refused(e.to_string()))?;
                false
            }
            Err(e) => return Err(refused(e.to_string())),
        };
        if created {
            std::fs::remove_file(path).map_err(|e| refused(e.to_string()))?;
        }
        Ok(Output::File(path.to_path_buf()))
    }

    /// [`Output::check`] for an optional flag; bad input if it cannot be written.
    pub fn optional(flag: &'static str, path: Option<&Path>) -> Result<Option<Output>, CliError> {
        path.map(|p| Output::check(flag, p))
            .transpose()
            .map_err(CliError::input)
    }

    /// Writes `text` as it is.
    pub fn write(&self, text: &str) -> Result<(), CliError> {
        match self {
            Output::Stdout => {
                print!("{text}");
                Ok(())
            }
            Output::File(path) => std::fs::write(path, text).map_err(|e| {
                CliError::failed(OutputError {
                    flag: "output",
                    path: path.clone(),
                    reason: e.to_string(),
                })
            }),
        }
    }

    /// Writes `value` as pretty JSON, with a final newline.
    pub fn write_json(&self, value: &impl Serialize) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(value).map_err(CliError::failed)?;
        self.write(&(text + "\n"))
    }
}

/// Prints `text`, a table for a person, on stdout; on stderr when one of `outputs` is
/// stdout, which then carries the JSON or CSV a program reads.
pub fn print_beside(text: &str, outputs: &[&Option<Output>]) {
    if outputs.iter().any(|o| matches!(o, Some(Output::Stdout))) {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

/// Refuses two outputs that both name standard output.
pub fn one_stdout(
    a: (&'static str, &Option<Output>),
    b: (&'static str, &Option<Output>),
) -> Result<(), CliError> {
    match (a.1, b.1) {
        (Some(Output::Stdout), Some(Output::Stdout)) => {
            Err(CliError::input(SharedStdout(a.0, b.0)))
        }
        _ => Ok(()),
    }
}

/// `text` with control characters (an ESC that would drive the terminal, say) written as
/// escapes; line breaks and tabs are kept. Error lines quote the user's input, which may
/// hold anything.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_lines_kept() {
        assert_eq!(escaped("a\u{1b}[2Jb\nc\td"), "a\\u{1b}[2Jb\nc\td");
        assert_eq!(escaped("plain"), "plain");
    }

    #[test]
    fn a_missing_folder_is_refused_naming_the_flag() {
        let err = Output::check("--csv", Path::new("/no/such/folder/x.csv")).unwrap_err();
        assert_eq!(err.flag, "--csv");
        assert!(
            err.to_string().starts_with("--csv /no/such/folder/x.csv: "),
            "{err}"
        );
        assert_eq!(
            Output::check("--json", Path::new("-")).unwrap(),
            Output::Stdout
        );
        let twice = one_stdout(
            ("--json", &Some(Output::Stdout)),
            ("--csv", &Some(Output::Stdout)),
        );
        assert!(matches!(twice, Err(CliError::Input(_))));
    }
}
