//! dialin-bench: the load benchmark behind `bench/run`. See bench/README.md.
//!
//! One process plays every peer around the relay: the phone side (SIP UAC + RTP), the
//! conference side (SIP UAS + RTP) and, for rtpengine, the ng controller. It measures the relay
//! from outside: CPU and memory from /proc, loss and latency from its own stamped packets.

mod load;
mod metrics;
mod phases;
mod procfs;
mod report;
mod rtpengine;
mod sip;
mod stamped;
mod uac;

use std::path::PathBuf;
use std::time::Duration;

/// What to run, from the command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// The dialin binary (release build).
    pub dialin: PathBuf,
    /// Concurrent calls during the media window.
    pub calls: usize,
    /// Length of the media window.
    pub duration: Duration,
    /// Call setups per second while placing the calls.
    pub rate: f64,
    /// Where results go.
    pub out: PathBuf,
    /// First of the ports the benchmark uses (about 100 + 8 per call above it).
    pub port_base: u16,
    /// Skip the rtpengine comparison.
    pub no_rtpengine: bool,
    /// A command run in rtpengine's place (with rtpengine's arguments), e.g. `floor-relay`.
    pub reference: Option<String>,
    /// Mode name written into the results (quick/full/custom).
    pub mode: String,
    /// Commit of dialin under test, as text.
    pub commit: String,
    /// A README whose benchmark table (between markers) is replaced by this run's.
    pub readme: Option<PathBuf>,
}

const HELP: &str =
    "dialin-bench: measure dialin's relay and call setup, side by side with rtpengine

usage: dialin-bench --dialin PATH [--quick | --full] [options]

  --dialin PATH      the dialin binary to measure (a release build)
  --quick            500 calls, 10 s of media (about 1 minute)
  --full             1000 calls, 30 s of media (the default)
  --calls N          concurrent calls during the media window
  --duration SECS    length of the media window
  --rate N           call setups per second while placing calls (default 200)
  --out DIR          where latest.json/latest.md go (default bench/results)
  --port-base N      first UDP port used (default 50000; uses about 100 + 8 per call)
  --no-rtpengine     skip the rtpengine comparison
  --reference CMD    compare with CMD instead of rtpengine: a relay that takes rtpengine's
                     arguments and ng requests, such as floor-relay (see bench/README.md);
                     results go to OUT/reference/ and never into the README
  --commit TEXT      the commit measured, written into the results
  --readme FILE      replace the table between <!-- bench:start/end --> in FILE
  -h, --help         this text
";

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        dialin: PathBuf::new(),
        calls: 1000,
        duration: Duration::from_secs(30),
        rate: 200.0,
        out: PathBuf::from("bench/results"),
        port_base: 50000,
        no_rtpengine: false,
        reference: None,
        mode: "full".into(),
        commit: "unknown".into(),
        readme: None,
    };
    let mut args = std::env::args().skip(1);
    let mut custom = false;
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            "--dialin" => o.dialin = PathBuf::from(val()?),
            "--quick" => {
                o.calls = 500;
                o.duration = Duration::from_secs(10);
                o.mode = "quick".into();
            }
            "--full" => {
                o.calls = 1000;
                o.duration = Duration::from_secs(30);
                o.mode = "full".into();
            }
            "--calls" => {
                o.calls = val()?.parse().map_err(|_| "--calls wants a number")?;
                custom = true;
            }
            "--duration" => {
                let s: f64 = val()?.parse().map_err(|_| "--duration wants seconds")?;
                o.duration = Duration::from_secs_f64(s);
                custom = true;
            }
            "--rate" => o.rate = val()?.parse().map_err(|_| "--rate wants a number")?,
            "--out" => o.out = PathBuf::from(val()?),
            "--port-base" => {
                o.port_base = val()?.parse().map_err(|_| "--port-base wants a port")?
            }
            "--no-rtpengine" => o.no_rtpengine = true,
            "--reference" => {
                let cmd = val()?;
                if cmd.split_whitespace().next().is_none() {
                    return Err("--reference wants a command".into());
                }
                o.reference = Some(cmd);
            }
            "--commit" => o.commit = val()?,
            "--readme" => o.readme = Some(PathBuf::from(val()?)),
            other => return Err(format!("unknown argument {other} (see --help)")),
        }
    }
    if custom {
        o.mode = format!("{} (custom)", o.mode);
    }
    if o.reference.is_some() {
        // An experiment, not the comparison the README reports: kept apart from it.
        o.readme = None;
        o.out = o.out.join("reference");
        o.mode = format!("{} (reference relay, not rtpengine)", o.mode);
    }
    if o.dialin.as_os_str().is_empty() {
        return Err("--dialin PATH is required (see --help)".into());
    }
    if o.calls == 0 || o.rate <= 0.0 {
        return Err("--calls and --rate must be positive".into());
    }
    if o.port_base as usize + 200 + 8 * o.calls > 65000 {
        return Err("--port-base too high for this many calls".into());
    }
    Ok(o)
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("dialin-bench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = phases::run(&opts) {
        eprintln!("dialin-bench: {e}");
        std::process::exit(1);
    }
}
