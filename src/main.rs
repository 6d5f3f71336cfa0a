//! The `dialin` binary: command line, logging and signal handling. Everything else is in the
//! library; see `dialin::serve`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use dialin::config::Config;
use dialin::logging::LogFormat;
use dialin::ops::client::request;
use dialin::serve::status::Status;
use std::net::SocketAddr;
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
        /// Log lines as plain text (default) or as one JSON object per line.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Print a short summary (calls, servers, version) of the running instance.
    Status {
        #[command(flatten)]
        target: Target,
    },
    /// Drain the running instance: no new calls, exit when the last call has ended.
    Drain {
        #[command(flatten)]
        target: Target,
    },
    /// Exit 0 if the running instance is ready for calls (`/readyz`), else print why and exit 1.
    /// Needs no token: for container health checks and scripts.
    Health {
        /// Only ask whether the process answers (`/healthz`), not whether it should get calls.
        #[arg(long)]
        live: bool,
        #[command(flatten)]
        target: Target,
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

/// Which running instance `status` and `drain` talk to: its admin listener.
#[derive(clap::Args)]
struct Target {
    /// The admin listener's address (default: `[admin] listen` of --config, else 127.0.0.1:8089).
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// The instance's configuration file, to find its admin listener.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

impl Target {
    /// The admin listener's address and the bearer token, from the flags and the config.
    fn resolve(&self) -> anyhow::Result<(SocketAddr, Option<String>)> {
        let config = self.config()?;
        let token = dialin::admin::auth::token_text(&config.admin)?;
        Ok((self.address(&config)?, token))
    }

    /// The admin listener's address alone, for the routes that need no token (a health check
    /// must not need to read the token file).
    fn resolve_address(&self) -> anyhow::Result<SocketAddr> {
        match self.admin {
            Some(a) => Ok(a),
            None => self.address(&self.config()?),
        }
    }

    fn config(&self) -> anyhow::Result<Config> {
        Ok(match &self.config {
            Some(p) => {
                Config::load(p).map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))?
            }
            None => Config::embedded_default(),
        })
    }

    fn address(&self, config: &Config) -> anyhow::Result<SocketAddr> {
        match self.admin {
            Some(a) => Ok(a),
            None => config.admin.listen.context(
                "the admin listener is off ([admin] listen = \"\"); turn it on to use this command",
            ),
        }
    }
}

fn main() -> ExitCode {
    // Before any thread exists (see `ops::allocator`: RSS per call).
    dialin::ops::allocator::tune();
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Status { target } => client(&target, |addr, token| {
            let body = request(addr, token, "GET", "/api/v1/status")?;
            let status: Status = serde_json::from_str(&body)
                .context("the status answer is not what this dialin version expects")?;
            print!("{}", status.render());
            Ok(())
        }),
        Command::Drain { target } => client(&target, |addr, token| {
            request(addr, token, "POST", "/api/v1/drain")?;
            println!("draining: new calls are refused; dialin exits when the last call has ended");
            Ok(())
        }),
        Command::Health { live, target } => {
            let path = if live { "/healthz" } else { "/readyz" };
            match target
                .resolve_address()
                .and_then(|addr| Ok(request(addr, None, "GET", path)?))
            {
                Ok(body) => {
                    println!("{}", body.trim_end());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dialin: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Pins(args) => pins(args),
        Command::Serve { config, log_format } => {
            dialin::logging::init(log_format);
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

fn client(
    target: &Target,
    f: impl FnOnce(SocketAddr, Option<&str>) -> anyhow::Result<()>,
) -> ExitCode {
    match target
        .resolve()
        .and_then(|(addr, token)| f(addr, token.as_deref()))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dialin: {e:#}");
            ExitCode::FAILURE
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
        // Set-up latency on a busy machine (see `ops::sched`); without it calls only wait longer.
        .on_thread_start(|| {
            dialin::ops::sched::short_slice_for_this_thread().ok();
        })
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(dialin::serve::run(config, path))
}
