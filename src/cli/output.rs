//! The one output flag of every command that prints results: `--format table|json` (`-f`),
//! with `--json` kept as a hidden alias of `--format json`. Commands with more formats
//! (health, pool-advise, demo) keep their own `--format` with table and json among them.
//! Every JSON document is one object with a `schema` field (see docs/src/configuration.md).

use clap::{Args, ValueEnum};

/// How a command prints its result.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// For people: aligned columns, one line per thing
    #[default]
    Table,
    /// One JSON object with a `schema` version field
    Json,
}

#[derive(Debug, Args, Clone, Copy, Default)]
pub struct OutputArgs {
    /// Output format: table, or json (one object with a "schema" field)
    #[arg(long, short = 'f', value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// The same as --format json (kept for scripts written before --format)
    #[arg(long, hide = true)]
    pub json: bool,
}

impl OutputArgs {
    pub fn json(&self) -> bool {
        self.json || self.format == OutputFormat::Json
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        out: OutputArgs,
    }

    #[test]
    fn format_json_and_the_json_alias_agree() {
        let parse = |args: &[&str]| T::try_parse_from([&["t"], args].concat()).map(|t| t.out.json());
        assert!(matches!(parse(&[]), Ok(false)));
        assert!(matches!(parse(&["--format", "table"]), Ok(false)));
        assert!(matches!(parse(&["--format", "json"]), Ok(true)));
        assert!(matches!(parse(&["-f", "json"]), Ok(true)));
        assert!(matches!(parse(&["--json"]), Ok(true)));
        assert!(parse(&["--format", "yaml"]).is_err());
    }
}
