//! The `dialin` binary: command line, logging and signal handling. Everything else is in the
//! library; see `dialin::serve`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use dialin::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

/// Telephone dial-in bridge for BigBlueButton.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bridge. Without --config the built-in defaults are used (deploy/dialin.example.toml).
    Serve {
        /// The configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Manage the PIN mappings in the configured store (see `dialin pins --help`).
    Pins(dialin::pins_cmd::PinsArgs),
    /// Check a configuration file and explain every problem with its key and line.
    Check {
        /// The configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Pins(args) => pins(args),
        Command::Serve { config } => {
            dialin::logging::init();
            match serve(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("dialin: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            for warning in config.warnings() {
                println!("{}: warning: {warning}", path.display());
            }
            // The prompts are part of a working configuration: load them as serve would.
            if let Err(e) = dialin::sounds::load_prompts(&config.ivr) {
                eprintln!("{}: ivr.sounds_dir: {e}", path.display());
                return ExitCode::FAILURE;
            }
            // So is the admin token serve would load (its value is never printed).
            if config.admin.listen.is_some() {
                if let Err(e) = dialin::admin::auth::load_token(&config.admin) {
                    eprintln!("{}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

fn pins(args: dialin::pins_cmd::PinsArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dialin: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dialin::pins_cmd::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dialin pins: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = match &path {
        Some(p) => Config::load(p).map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))?,
        None => Config::embedded_default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(dialin::serve::run(config))
}
