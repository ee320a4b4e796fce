//! `vmsbench scenarios`: the built-in scenario presets.
//!
//! - no argument: one line per preset (name, cameras, servers, clients, description);
//! - `NAME`: the preset's TOML, to copy and edit (`vmsbench scenarios medium > my.toml`);
//! - `NAME --resolved`: the scenario as the run sees it, as JSON (optionally `--scale`d).
//!
//! `NAME` may also be the path of a scenario file: it is checked, and summarised in one
//! line (or printed resolved).

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;

use crate::engine::scenario::file::{self, parse_scale, PRESET_NAMES};
use crate::engine::scenario::Scenario;

/// `vmsbench scenarios`.
#[derive(Debug, clap::Args)]
pub struct ScenariosArgs {
    /// A preset (small, medium, large, multi-site, mixed-integrations, certificate-incidents,
    /// connections-8k) or a scenario file.
    /// Without it, the presets are listed.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Print the resolved scenario as JSON instead of its TOML.
    #[arg(long, requires = "name")]
    pub resolved: bool,
    /// Multiply every camera and client count by F before printing (implies --resolved).
    #[arg(long, value_name = "F", value_parser = parse_scale, requires = "name")]
    pub scale: Option<f64>,
}

/// The `scenarios` arguments on their own, for [`run_from_args_with`].
#[derive(Debug, Parser)]
#[command(
    name = "vmsbench scenarios",
    bin_name = "vmsbench scenarios",
    no_binary_name = true
)]
struct ScenariosCli {
    #[command(flatten)]
    args: ScenariosArgs,
}

/// Runs `vmsbench scenarios`, printing to stdout. A scenario that does not load is an
/// `Err` whose message is `file:line:column: what is wrong`.
pub fn run(args: &ScenariosArgs) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    run_with(args, &mut stdout.lock())
}

/// [`run`], printing to `out`.
pub fn run_with(args: &ScenariosArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let Some(name) = &args.name else {
        let mut rows = Vec::new();
        for name in PRESET_NAMES {
            rows.push(Summary::of(&file::load_preset(name)?));
        }
        write_table(out, &rows)?;
        return Ok(ExitCode::SUCCESS);
    };
    let scenario = file::load(name)?;
    // `load` took a preset's name to mean the preset, so its text is what was loaded.
    let preset = file::preset_text(name);
    if args.resolved || args.scale.is_some() {
        let scenario = match args.scale {
            Some(f) => scenario.scaled(f),
            None => scenario,
        };
        scenario.check()?;
        let json =
            serde_json::to_string_pretty(&scenario).context("cannot write the scenario as JSON")?;
        writeln!(out, "{json}")?;
    } else if let Some(text) = preset {
        out.write_all(text.as_bytes())?;
    } else {
        write_table(out, &[Summary::of(&scenario)])?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses the arguments that follow `vmsbench scenarios` (e.g. `["medium"]`) and runs
/// them like [`run_with`]. A usage error is printed to `err` and gives exit code 2;
/// `--help` prints to `out`.
pub fn run_from_args_with<I, T>(
    args: I,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match ScenariosCli::try_parse_from(args) {
        Ok(cli) => run_with(&cli.args, out),
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                write!(err, "{text}")?;
                Ok(ExitCode::from(2))
            } else {
                write!(out, "{text}")?;
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// One line of the listing.
struct Summary {
    name: String,
    cameras: u64,
    servers: String,
    clients: String,
    description: String,
}

impl Summary {
    fn of(s: &Scenario) -> Summary {
        let mut servers = vec!["MS".to_owned(), format!("{} RS", s.recorders.len())];
        if !s.failovers.is_empty() {
            servers.push(format!("{} failover", s.failovers.len()));
        }
        if s.event_server.is_some() {
            servers.push("event".into());
        }
        if let Some(m) = &s.mobile_server {
            servers.push(match m.mode {
                crate::engine::scenario::MobileMode::Direct => "mobile".into(),
                crate::engine::scenario::MobileMode::Transcoded => "mobile (transcoding)".into(),
            });
        }
        let total = |counts: &mut dyn Iterator<Item = u32>| counts.map(u64::from).sum::<u64>();
        let playback = total(
            &mut s
                .viewers
                .iter()
                .filter(|v| v.mode != crate::engine::scenario::ViewMode::Live)
                .map(|v| v.count),
        );
        let viewers = total(&mut s.viewers.iter().map(|v| v.count));
        let sdk = total(&mut s.integrations.iter().map(|g| g.count));
        let plain_sdk = total(
            &mut s
                .integrations
                .iter()
                .filter(|g| !g.tls_capable)
                .map(|g| g.count),
        );
        let phones = total(&mut s.phones.iter().map(|p| p.count));
        let collectors = total(&mut s.collectors.iter().map(|c| c.count));
        let mut clients = Vec::new();
        if viewers > 0 {
            clients.push(if playback > 0 {
                format!("{viewers} viewers ({playback} playback)")
            } else {
                format!("{viewers} viewers")
            });
        }
        if sdk > 0 {
            clients.push(if plain_sdk > 0 {
                format!("{sdk} SDK ({plain_sdk} plaintext-only)")
            } else {
                format!("{sdk} SDK")
            });
        }
        if phones > 0 {
            clients.push(format!("{phones} phones"));
        }
        if collectors > 0 {
            clients.push(format!("{collectors} collectors"));
        }
        Summary {
            name: s.name.clone(),
            cameras: s
                .recorders
                .iter()
                .map(|r| u64::from(r.camera_count()))
                .sum(),
            servers: servers.join(", "),
            clients: if clients.is_empty() {
                "-".into()
            } else {
                clients.join(", ")
            },
            description: s.description.clone(),
        }
    }
}

fn write_table(out: &mut dyn Write, rows: &[Summary]) -> io::Result<()> {
    let width = |head: &str, f: &dyn Fn(&Summary) -> usize| {
        rows.iter()
            .map(f)
            .max()
            .unwrap_or(0)
            .max(head.chars().count())
    };
    let wn = width("NAME", &|r| r.name.chars().count());
    let wc = width("CAMERAS", &|r| r.cameras.to_string().len());
    let ws = width("SERVERS", &|r| r.servers.chars().count());
    let wl = width("CLIENTS", &|r| r.clients.chars().count());
    writeln!(
        out,
        "{:<wn$}  {:>wc$}  {:<ws$}  {:<wl$}  DESCRIPTION",
        "NAME", "CAMERAS", "SERVERS", "CLIENTS"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<wn$}  {:>wc$}  {:<ws$}  {:<wl$}  {}",
            r.name, r.cameras, r.servers, r.clients, r.description
        )?;
    }
    Ok(())
}
