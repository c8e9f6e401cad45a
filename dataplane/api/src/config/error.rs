//! Errors from loading a configuration file, worded for the person who wrote it.
//!
//! Every message names the file and, when known, the line and column, in the
//! `file:line:column: ...` form editors and terminals understand.

use std::fmt;
use std::io;

/// One thing wrong with an otherwise well-formed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the configuration, as a path such as
    /// `services[1].real_servers[0].weight` or `services[1]`.
    pub field: String,
    /// What is wrong, in plain words, naming the values involved.
    pub message: String,
    /// 1-based line of the field in the file, when it could be found.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the field in the file.
    pub column: Option<usize>,
}

impl Problem {
    /// A problem at `field` whose position in the file is not known yet.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: message.into(),
            line: None,
            column: None,
        }
    }

    /// Formats the problem as one line, prefixed with `origin` (the file name)
    /// and the position when known:
    /// `configs/lab.ron:23:17: services[1].real_servers[0].weight: weight 70000 is ...`.
    pub fn display_in<'a>(&'a self, origin: &'a str) -> impl fmt::Display + 'a {
        ProblemIn {
            origin,
            problem: self,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{line}:{column}: ")?;
        }
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

struct ProblemIn<'a> {
    origin: &'a str,
    problem: &'a Problem,
}

impl fmt::Display for ProblemIn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Problem`'s own Display starts with "line:column: " when known.
        write!(f, "{}:", self.origin)?;
        if self.problem.line.is_none() || self.problem.column.is_none() {
            f.write_str(" ")?;
        }
        write!(f, "{}", self.problem)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read the configuration file: {source}")]
    Io {
        /// The file, as given.
        path: String,
        #[source]
        source: io::Error,
    },
    /// The text is not valid RON for the configuration format: a syntax
    /// error, an unknown field or name, a value of the wrong type.
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        /// The file name (or other origin) the text came from.
        origin: String,
        /// 1-based line where the parser stopped.
        line: usize,
        /// 1-based column (in characters) where the parser stopped.
        column: usize,
        /// RON's message, followed by a hint when one helps.
        message: String,
    },
    /// The file parsed but its content does not make sense: one entry per
    /// problem, in file order of the checks.
    #[error("{}", InvalidDisplay { origin, problems })]
    Invalid {
        /// The file name (or other origin) the text came from.
        origin: String,
        /// Everything found wrong (never empty).
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The validation problems, if this is [`ConfigError::Invalid`].
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

struct InvalidDisplay<'a> {
    origin: &'a str,
    problems: &'a [Problem],
}

impl fmt::Display for InvalidDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}", p.display_in(self.origin))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_problem_display_with_and_without_position() {
        let mut p = Problem::new(
            "services[1].real_servers[0].weight",
            "weight 70000 is out of range (0 to 65535)",
        );
        assert_eq!(
            p.display_in("configs/lab.ron").to_string(),
            "configs/lab.ron: services[1].real_servers[0].weight: weight 70000 is out of range (0 to 65535)"
        );
        p.line = Some(23);
        p.column = Some(17);
        assert_eq!(
            p.display_in("configs/lab.ron").to_string(),
            "configs/lab.ron:23:17: services[1].real_servers[0].weight: weight 70000 is out of range (0 to 65535)"
        );
    }

    #[test]
    fn config_invalid_is_one_line_per_problem() {
        let e = ConfigError::Invalid {
            origin: "a.ron".into(),
            problems: vec![Problem::new("ports", "x"), Problem::new("services[0]", "y")],
        };
        assert_eq!(e.to_string(), "a.ron: ports: x\na.ron: services[0]: y");
        assert_eq!(e.problems().len(), 2);
    }
}
