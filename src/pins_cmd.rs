//! `dialin pins ...`: manage the PIN mappings of the configured store from the shell. The same
//! validation as the HTTP API; config-file `[[pins]]` are listed as read-only. Output goes to
//! stdout for the admin who asked (it shows PINs; nothing here is logged).

use crate::config::Config;
use crate::store::exchange::{self, Format};
use crate::store::location::{Location, Origin};
use crate::store::model::{format_time, Mapping, MappingDoc, Rules, Target};
use crate::store::{generate, Create, Store, StoreError};
use anyhow::{bail, Context};
use std::io::Read;
use std::path::PathBuf;

/// `dialin pins` arguments.
#[derive(clap::Args, Debug)]
pub struct PinsArgs {
    /// The configuration file (TOML); without it the built-in defaults are used.
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    /// Create the SQLite store if its file does not exist yet. Without it a missing file is an
    /// error: a new, empty store where the service does not look would silently take the PINs.
    #[arg(long, global = true)]
    pub create_store: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: PinsCommand,
}

/// The target and metadata of `add` and `set`.
#[derive(clap::Args, Debug)]
pub struct MappingArgs {
    /// The PIN callers type (digits).
    pub pin: String,
    /// The meeting's voiceBridge number.
    #[arg(
        long,
        conflicts_with = "meeting_id",
        required_unless_present = "meeting_id"
    )]
    pub conference: Option<String>,
    /// The BBB meeting ID, resolved to its voiceBridge at call time.
    #[arg(long)]
    pub meeting_id: Option<String>,
    /// A server name from the configuration (default: the default-server rule).
    #[arg(long)]
    pub server: Option<String>,
    /// A label for admins (no personal data).
    #[arg(long)]
    pub label: Option<String>,
    /// RFC 3339 time from which the PIN works.
    #[arg(long)]
    pub valid_from: Option<String>,
    /// RFC 3339 time from which it no longer works.
    #[arg(long)]
    pub valid_until: Option<String>,
}

/// The `pins` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum PinsCommand {
    /// Map a new PIN (fails if it is mapped already).
    Add(MappingArgs),
    /// Map a PIN, replacing any mapping it has.
    Set(MappingArgs),
    /// Remove a PIN's mapping.
    Remove {
        /// The PIN.
        pin: String,
    },
    /// Show one PIN's mapping.
    Show {
        /// The PIN.
        pin: String,
    },
    /// List every mapping (store and config file).
    List,
    /// Import mappings from a file ("-" for stdin): all rows or none.
    Import {
        /// The file.
        file: PathBuf,
        /// Its format (default: by extension, else CSV).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Replace the whole set instead of adding to it.
        #[arg(long)]
        replace: bool,
    },
    /// Export the store's mappings to stdout.
    Export {
        /// The format.
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Suggest an unused random PIN (no leading 0, no repeated neighbouring digits).
    Generate {
        /// Digits (default: ivr.pin_min_digits, at least 6).
        #[arg(long)]
        length: Option<usize>,
    },
}

/// Runs a `pins` command to completion.
pub async fn run(args: PinsArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(p) => Config::load(p).map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))?,
        None => Config::embedded_default(),
    };
    let rules = config.store_rules();
    let at = config.store.location()?;
    // One line, so the admin sees at once whether this is the store the service reads.
    eprintln!("dialin pins: store {at}");
    // Read while still the invoking user: root's file may not be readable by the store's owner.
    let import_text = match &args.command {
        PinsCommand::Import { file, .. } => Some(read_import(file)?),
        _ => None,
    };
    // Root on the service's store works as the service's user, so every file stays its own.
    if let Some(dir) = at.file().and_then(|f| f.parent()) {
        let switched = crate::store::owner::become_owner_of(dir).with_context(|| {
            format!(
                "cannot take the user owning {} (run dialin pins as that user)",
                dir.display()
            )
        })?;
        if let Some(s) = switched {
            eprintln!(
                "dialin pins: working as uid {} gid {}, the owner of {}",
                s.uid,
                s.gid,
                dir.display()
            );
        }
    }
    let create = if args.create_store {
        Create::IfMissing
    } else {
        Create::Never
    };
    let store = match Store::open_at(&at, create).await {
        Err(StoreError::Missing { path }) => {
            bail!(missing_store(&at, &path, args.config.is_some()))
        }
        other => other?,
    };
    let result = command(&config, &rules, &store, args.command, import_text).await;
    store.close().await;
    result
}

/// The text of an import file, or of stdin for "-".
fn read_import(file: &std::path::Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read stdin")?;
    } else {
        text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
    }
    Ok(text)
}

// Over 80 lines: one short match arm per `dialin pins` subcommand.
async fn command(
    config: &Config,
    rules: &Rules,
    store: &Store,
    cmd: PinsCommand,
    import_text: Option<String>,
) -> anyhow::Result<()> {
    match cmd {
        PinsCommand::Add(m) => {
            let new = validate(rules, &m)?;
            store.insert(&new).await?;
            println!("added");
        }
        PinsCommand::Set(m) => {
            let new = validate(rules, &m)?;
            let put = store.put(&new).await?;
            println!(
                "{}",
                if put == crate::store::Put::Created {
                    "added"
                } else {
                    "updated"
                }
            );
        }
        PinsCommand::Remove { pin } => {
            let pin = rules.check_pin(&pin).map_err(|e| anyhow::anyhow!("{e}"))?;
            if rules.reserved.contains(&pin) {
                bail!("pin: is mapped in the config file ([[pins]]), which is read-only here; remove it there");
            }
            if !store.remove(&pin).await? {
                bail!("pin: not mapped in the store");
            }
            println!("removed");
        }
        PinsCommand::Show { pin } => {
            let pin = rules.check_pin(&pin).map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(c) = config.pins.iter().find(|c| c.pin == pin) {
                println!("{}", config_line(c));
            } else {
                match store.get(&pin).await? {
                    Some(m) => println!("{}", line(&m)),
                    None => bail!("pin: not mapped"),
                }
            }
        }
        PinsCommand::List => {
            for c in &config.pins {
                println!("{}", config_line(c));
            }
            for m in store.all().await? {
                println!("{}", line(&m));
            }
        }
        PinsCommand::Import {
            file,
            format,
            replace,
        } => {
            let format = format.unwrap_or(match file.extension().and_then(|e| e.to_str()) {
                Some("json") => Format::Json,
                _ => Format::Csv,
            });
            let text = import_text.context("the import file was not read")?;
            let ms = exchange::import(&text, format, rules).map_err(|errors| {
                anyhow::anyhow!(
                    "{}: nothing imported:\n{}",
                    file.display(),
                    errors.join("\n")
                )
            })?;
            store.write_all(&ms, replace).await?;
            println!(
                "imported {} mappings{}",
                ms.len(),
                if replace { " (replacing the set)" } else { "" }
            );
        }
        PinsCommand::Export { format } => {
            print!("{}", exchange::export(&store.all().await?, format))
        }
        PinsCommand::Generate { length } => {
            let pin = generate::unused_pin(store, rules, length)
                .await
                .map_err(|e| match e {
                    generate::SuggestError::Length(f) => anyhow::anyhow!("--{f}"),
                    other => other.into(),
                })?;
            println!("{pin}");
        }
    }
    Ok(())
}

/// Why `dialin pins` refuses to create the store at `path`, and what to do instead: the
/// operator most likely meant the store the service uses.
fn missing_store(at: &Location, path: &std::path::Path, have_config: bool) -> String {
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| "?".into());
    let why = match at.origin() {
        Origin::Default => format!(
            "{} sets no [store] url, so the default is used: dialin-pins.db in $STATE_DIRECTORY, \
             which systemd sets only for the service (/var/lib/dialin with the shipped unit), \
             else in the working directory ({cwd}).",
            if have_config { "The configuration" } else { "Without --config, the built-in configuration" }
        ),
        Origin::Configured(key) if at.is_relative() => format!(
            "{key} names a relative path, resolved against the working directory ({cwd}); the \
             service resolves it against its own (/var/lib/dialin with the shipped unit). \
             Write an absolute path."
        ),
        Origin::Configured(key) => format!(
            "{key} names this file, but it does not exist yet; the service creates it on its first start."
        ),
    };
    format!(
        "there is no PIN store at {}, and `dialin pins` does not create one: a new, empty store \
         there would not be the one the service reads.\n{why}\n\
         To fix: pass --config with the file the service uses (the Debian package's \
         /etc/dialin/dialin.toml sets [store] url = \"sqlite:///var/lib/dialin/dialin-pins.db\"), \
         or set [store] url (or url_file, url_env) to the service's store; \
         or pass --create-store to create a new, empty store at this path.",
        path.display()
    )
}

fn validate(rules: &Rules, m: &MappingArgs) -> anyhow::Result<crate::store::model::NewMapping> {
    let doc = MappingDoc {
        pin: Some(m.pin.clone()),
        conference: m.conference.clone(),
        meeting_id: m.meeting_id.clone(),
        server: m.server.clone(),
        label: m.label.clone(),
        valid_from: m.valid_from.clone(),
        valid_until: m.valid_until.clone(),
        ..MappingDoc::default()
    };
    rules.validate(&doc, None).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    })
}

/// One listing line of a stored mapping: tab-separated for scripts.
fn line(m: &Mapping) -> String {
    let (kind, target, server) = match &m.target {
        Target::Conference { conference, server } => ("conference", conference.expose(), server),
        Target::Meeting { meeting_id, server } => ("meeting_id", meeting_id.as_str(), server),
    };
    let window = match (m.valid_from, m.valid_until) {
        (None, None) => "always".to_string(),
        (f, u) => format!(
            "{}..{}",
            f.map(format_time).unwrap_or_default(),
            u.map(format_time).unwrap_or_default()
        ),
    };
    format!(
        "{}\t{kind}={target}\tserver={}\t{window}\tstore\t{}",
        m.pin.expose(),
        server.as_deref().unwrap_or("-"),
        m.label.as_deref().unwrap_or("")
    )
}

/// One listing line of a config-file mapping.
fn config_line(c: &crate::config::PinMapping) -> String {
    format!(
        "{}\tconference={}\tserver={}\talways\tconfig (read-only)\t",
        c.pin.expose(),
        c.conference.expose(),
        c.server.as_deref().unwrap_or("-")
    )
}
