//! `lbctl`: the operator's tool for the lbd director.
//!
//! Today it validates configuration files offline. The verbs that talk to a
//! running lbd over its control socket (list, add, edit, delete, conns, ...)
//! arrive with the control-plane work; they are not offered until they work.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// lbctl — control tool for the lbd load-balancer director.
#[derive(Parser, Debug)]
#[command(name = "lbctl", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Check a configuration file without applying it. Exit status 0 when
    /// valid; 2 with one `FILE:LINE:COLUMN: field: problem` line per problem.
    Validate {
        /// The RON configuration file.
        file: PathBuf,
        /// Print the configuration as lbd understands it (defaults filled in).
        #[arg(long)]
        show: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Validate { file, show } => match lbcore::config::load(&file) {
            Ok(cfg) => {
                if show {
                    print!("{}", lbcore::config::to_ron_string(&cfg));
                } else {
                    println!(
                        "{}: valid ({} ports, {} services, {} real servers)",
                        file.display(),
                        cfg.ports.len(),
                        cfg.services.len(),
                        cfg.services
                            .iter()
                            .map(|s| s.real_servers.len())
                            .sum::<usize>()
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_validate() {
        let c = Cli::try_parse_from(["lbctl", "validate", "x.ron", "--show"]).unwrap();
        assert!(matches!(c.cmd, Cmd::Validate { show: true, .. }));
        assert!(Cli::try_parse_from(["lbctl", "validate"]).is_err());
        assert!(Cli::try_parse_from(["lbctl", "frobnicate"]).is_err());
    }
}
