//! `cascade-gateway`: runs the exchange gateway, or prints, checks or helps write its
//! configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use cascade_gateway::config::{GatewayConfig, DEFAULT_TOML};
use clap::{Parser, Subcommand};

/// Cascade's exchange gateway: FIX 4.4 and binary order entry, market data and metrics
/// around one pinned matching engine with a durable journal.
#[derive(Parser, Debug)]
#[command(name = "cascade-gateway", version)]
struct Cli {
    /// Configuration file (TOML); without it the embedded default runs (127.0.0.1
    /// only, two demo perpetuals, demo accounts; see `print-config`).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Overrides `gateway.journal_dir`.
    #[arg(long, value_name = "DIR")]
    journal: Option<PathBuf>,
    /// Overrides all four ports with 0 (the OS picks free ones; the ready line says
    /// which): for tests and parallel runs.
    #[arg(long)]
    any_ports: bool,
    /// Overrides `gateway.fsync` (`batch`, `interval-ms:N` or `never`).
    #[arg(long, value_name = "POLICY")]
    fsync: Option<String>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runs the gateway (the default).
    Run,
    /// Writes the embedded default configuration to stdout.
    PrintConfig,
    /// Validates a configuration file; prints `ok` or the first error, naming the key.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Reads a password from stdin and prints its argon2id hash for the config.
    HashPassword,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cascade-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    match cli.command.as_ref().unwrap_or(&Cmd::Run) {
        Cmd::PrintConfig => {
            print!("{DEFAULT_TOML}");
            Ok(())
        }
        Cmd::CheckConfig { file } => {
            let cfg = GatewayConfig::load(file).map_err(|e| e.to_string())?;
            println!(
                "ok: {} markets, {} accounts",
                cfg.markets.len(),
                cfg.accounts.len()
            );
            Ok(())
        }
        Cmd::HashPassword => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            let pw = line.trim_end_matches(['\n', '\r']);
            if pw.is_empty() {
                return Err("empty password on stdin".into());
            }
            println!("{}", cascade_gateway::auth::hash_password(pw)?);
            Ok(())
        }
        Cmd::Run => serve(cli),
    }
}

fn serve(cli: &Cli) -> Result<(), String> {
    let mut cfg = match &cli.config {
        Some(p) => GatewayConfig::load(p).map_err(|e| e.to_string())?,
        None => GatewayConfig::default_config(),
    };
    if let Some(dir) = &cli.journal {
        cfg.gateway.journal_dir.clone_from(dir);
    }
    if cli.any_ports {
        let g = &mut cfg.gateway;
        (g.fix_port, g.binary_port, g.marketdata_port, g.metrics_port) = (0, 0, 0, 0);
    }
    if let Some(f) = &cli.fsync {
        cfg.gateway.fsync.clone_from(f);
        cfg.check().map_err(|e| e.to_string())?;
    }
    cascade_gateway::server::run(cfg)
}
