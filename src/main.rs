//! The dbtool binary: parse, run, print the error once, exit with its code.

use std::process::ExitCode;

use clap::Parser;

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    dbtool::errors::chain(err.as_ref()).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let cli = match dbtool::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; bad arguments are UNKNOWN (3), as Nagios expects.
            let code = if e.use_stderr() { 3 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match dbtool::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // why: errors quote servers and names (anyone's to set); no control byte reaches the terminal.
            let text = dbtool::errors::render(e.as_ref());
            eprintln!("dbtool: error: {}", dbtool::report::printable::printable_lines(&text));
            ExitCode::from(dbtool::exit_code_of(&e))
        }
    }
}
