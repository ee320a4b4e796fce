//! Command-line interface: flags and their parsing. Values accept what people type
//! (`10s`, `64KiB`, `1k`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use simulators::pki::KeyType;
use simulators::transport::{Cipher, KxGroup, Mode, TlsSettings, TlsVersion};

use crate::engine::scenario::file::parse_scale;
use crate::units::{parse_count, parse_duration, parse_size};

/// What does TLS cost on each link of a video-management system? vmsbench simulates the
/// deployment on real sockets, measures every link in plaintext and over TLS, and reports
/// the difference.
#[derive(Debug, Parser)]
#[command(name = "vmsbench", version, about, long_about = None)]
pub struct Opts {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stream video from a recording server to viewers, plaintext and TLS, and report the cost.
    Run(RunArgs),
    /// Push unpaced frames through one or more connections: the link's ceiling.
    Bulk(BulkArgs),
    /// Generate, inspect and check the certificates of a deployment.
    Certs(crate::commands::certs::CertsArgs),
    /// List the built-in scenario presets, print one as TOML, or resolve one to JSON.
    Scenarios(crate::commands::scenarios::ScenariosArgs),
    /// Measure TLS handshakes: versions × key types × key exchanges × full/resumed.
    Handshakes(crate::commands::handshakes::HandshakesArgs),
    /// Keep a result as the baseline, or check a result against one (exit 1 on a regression).
    Baseline(crate::commands::baseline::BaselineArgs),
    /// How many cameras one recording server holds within an objective, plaintext vs TLS.
    Capacity(crate::commands::capacity::CapacityArgs),
}

/// Which modes to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Plaintext only.
    Plain,
    /// TLS only.
    Tls,
    /// Plaintext and TLS, interleaved.
    Both,
}

impl ModeArg {
    /// The modes in the order each repeat runs them.
    pub fn modes(self) -> Vec<Mode> {
        match self {
            ModeArg::Plain => vec![Mode::Plain],
            ModeArg::Tls => vec![Mode::Tls],
            ModeArg::Both => vec![Mode::Plain, Mode::Tls],
        }
    }
}

/// Flags every measuring command shares.
#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// Plaintext, TLS, or both (interleaved: plain, tls, plain, tls, …).
    #[arg(long, value_enum, default_value_t = ModeArg::Both)]
    pub mode: ModeArg,
    /// Length of each measured window (e.g. 10s, 1m).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Time before each window for connections to settle (e.g. 2s).
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub warmup: Duration,
    /// Repeats of each mode; figures are medians over them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Where to write the report, in which formats.
    #[command(flatten)]
    pub export: ExportArgs,
    /// Scale warm-up and window by F (e.g. 0.3 for a brief CI run; warm-up stays ≥ 1.2 s).
    #[arg(long, value_name = "F", env = "VMSBENCH_MULTIPLIER", default_value_t = 1.0, value_parser = crate::commands::baseline::parse_multiplier)]
    pub multiplier: f64,
}

/// Exports of the report; one run writes any set of them. `-` is standard output (one
/// export at most; the terminal table is then left out).
#[derive(Debug, Default, Args)]
pub struct ExportArgs {
    /// Write the whole report as JSON to FILE (schema: harness/schema/report-v1.schema.json).
    #[arg(long = "export-json", visible_alias = "json", value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write Markdown tables (cost per link, figures, environment, warnings) to FILE.
    #[arg(long = "export-markdown", value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write one self-contained HTML page with plots to FILE (readable offline).
    #[arg(long = "export-html", value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write per-second samples of every link, mode and repeat as NDJSON to FILE.
    #[arg(long = "export-ndjson", value_name = "FILE")]
    pub ndjson: Option<PathBuf>,
    /// Write HdrHistogram percentile distributions (.hgrm, values in ms) into DIR, one file
    /// per link, mode and latency kind.
    #[arg(long = "export-hgrm", value_name = "DIR")]
    pub hgrm: Option<PathBuf>,
}

/// TLS parameters, pinned so that a comparison compares one thing. Each flag overrides
/// the scenario's setting; without flags the scenario's (by default TLS 1.3, AES-256-GCM,
/// X25519MLKEM768, RSA-2048) apply.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// TLS version(s) to offer, most preferred first: 1.3, 1.2.
    #[arg(long = "tls-version", value_delimiter = ',')]
    pub versions: Option<Vec<TlsVersion>>,
    /// Bulk cipher(s) to offer: aes128-gcm, aes256-gcm, chacha20-poly1305.
    #[arg(long = "cipher", value_delimiter = ',')]
    pub ciphers: Option<Vec<Cipher>>,
    /// Key-exchange group(s): x25519mlkem768, x25519, secp256r1, secp384r1.
    #[arg(long = "group", value_delimiter = ',')]
    pub groups: Option<Vec<KxGroup>>,
    /// Key type of the servers' certificates: rsa2048, rsa3072, rsa4096, ecdsa-p256, ecdsa-p384.
    #[arg(long)]
    pub key: Option<KeyType>,
}

impl TlsArgs {
    /// Applies the flags given to `tls` and `key`.
    pub fn apply(&self, tls: &mut TlsSettings, key: &mut KeyType) {
        if let Some(v) = &self.versions {
            tls.versions.clone_from(v);
        }
        if let Some(c) = &self.ciphers {
            tls.ciphers.clone_from(c);
        }
        if let Some(g) = &self.groups {
            tls.groups.clone_from(g);
        }
        if let Some(k) = self.key {
            *key = k;
        }
    }
}

/// Threads per role.
#[derive(Debug, Args)]
pub struct ThreadArgs {
    /// Worker threads of the server role (default: half the cores, at least 1).
    #[arg(long)]
    pub server_threads: Option<usize>,
    /// Worker threads of the client role (default: half the cores, at least 1).
    #[arg(long)]
    pub client_threads: Option<usize>,
}

/// `vmsbench run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A preset name (small, medium, large, multi-site, mixed-integrations, certificate-incidents) or a scenario
    /// file (TOML). Default: small.
    #[arg(value_name = "SCENARIO")]
    pub scenario: Option<String>,
    /// Scale the scenario's counts (cameras, clients) by F, e.g. 0.2 to fit a small machine.
    #[arg(long, value_name = "F", value_parser = parse_scale)]
    pub scale: Option<f64>,
    /// Measurement flags.
    #[command(flatten)]
    pub measure: MeasureArgs,
    /// Cameras on the first recording server (e.g. 32, 1k).
    #[arg(long, value_parser = parse_u32_count)]
    pub cameras: Option<u32>,
    /// Viewers in the first viewer group.
    #[arg(long, value_parser = parse_u32_count)]
    pub viewers: Option<u32>,
    /// Cameras each viewer of the first group watches.
    #[arg(long, value_parser = parse_u32_count)]
    pub cameras_per_viewer: Option<u32>,
    /// Profile of every camera: sub, 720p, 1080p, 1080p-h265, 4mp, 4k, mjpeg-1080p.
    #[arg(long)]
    pub profile: Option<String>,
    /// Frames each connection may queue on the recording server before it drops.
    #[arg(long, value_parser = parse_usize_count)]
    pub queue_frames: Option<usize>,
    /// Seed of the video model.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stage a certificate fault on a server host, as `[[fault]]` in a scenario would:
    /// HOST=KIND, e.g. recorder-1.vms.test=expired (kinds: expired, not_yet_valid,
    /// wrong_host, untrusted_ca, missing_intermediate, no_server_auth_eku, key_unreadable,
    /// rsa1024, tls11_client). Repeatable; replaces a fault the scenario stages on that host.
    #[arg(long, value_name = "HOST=KIND")]
    pub fault: Vec<String>,
    /// Stall every recording server for DURATION at the middle of each window (e.g. 1s):
    /// shows what coordinated-omission correction does to the latency figures.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub inject_stall: Option<Duration>,
    /// TLS flags.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Thread flags.
    #[command(flatten)]
    pub threads: ThreadArgs,
}

/// `vmsbench bulk`.
#[derive(Debug, Args)]
pub struct BulkArgs {
    /// Measurement flags.
    #[command(flatten)]
    pub measure: MeasureArgs,
    /// Parallel connections.
    #[arg(long, default_value = "1", value_parser = parse_u32_count)]
    pub connections: u32,
    /// Payload bytes per frame (e.g. 64KiB, 146KB).
    #[arg(long, default_value = "64KiB", value_parser = parse_frame_size)]
    pub frame_size: usize,
    /// TLS flags.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Thread flags.
    #[command(flatten)]
    pub threads: ThreadArgs,
}

fn parse_u32_count(s: &str) -> Result<u32, String> {
    let n = parse_count(s)?;
    u32::try_from(n).map_err(|_| format!("{s} is too large (at most {})", u32::MAX))
}

fn parse_usize_count(s: &str) -> Result<usize, String> {
    let n = parse_count(s)?;
    usize::try_from(n).map_err(|_| format!("{s} is too large"))
}

fn parse_frame_size(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    let max = u64::from(simulators::wire::MAX_PAYLOAD);
    if n == 0 || n > max {
        return Err(format!(
            "frame size must be 1 B to {max} B (16 MiB), not {n}"
        ));
    }
    usize::try_from(n).map_err(|_| format!("{s} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_human_units_parse() {
        let o = Opts::parse_from(["vmsbench", "run"]);
        let Command::Run(r) = o.command else {
            panic!("run")
        };
        assert_eq!(r.measure.mode, ModeArg::Both);
        assert_eq!(r.measure.repeat, 3);
        assert!(r.scenario.is_none() && r.tls.versions.is_none());

        let o = Opts::parse_from([
            "vmsbench",
            "bulk",
            "--duration",
            "1.5s",
            "--frame-size",
            "128KiB",
            "--mode",
            "tls",
            "--connections",
            "4",
            "--tls-version",
            "1.2,1.3",
            "--group",
            "x25519",
        ]);
        let Command::Bulk(b) = o.command else {
            panic!("bulk")
        };
        assert_eq!(b.measure.duration, Duration::from_millis(1500));
        assert_eq!(b.frame_size, 128 * 1024);
        assert_eq!(b.connections, 4);
        let (mut tls, mut key) = (TlsSettings::default(), KeyType::Rsa2048);
        b.tls.apply(&mut tls, &mut key);
        assert_eq!(tls.versions, vec![TlsVersion::Tls12, TlsVersion::Tls13]);
        assert_eq!(tls.groups, vec![KxGroup::X25519]);
        assert_eq!(tls.ciphers, TlsSettings::default().ciphers);
        let o = Opts::parse_from(["vmsbench", "run", "medium", "--scale", "0.2"]);
        let Command::Run(r) = o.command else {
            panic!("run")
        };
        assert_eq!(
            (r.scenario.as_deref(), r.scale),
            (Some("medium"), Some(0.2))
        );
        assert!(Opts::try_parse_from(["vmsbench", "run", "--scale", "0"]).is_err());
        assert!(Opts::try_parse_from(["vmsbench", "bulk", "--frame-size", "1GiB"]).is_err());
        assert!(Opts::try_parse_from(["vmsbench", "run", "--repeat", "0"]).is_err());
        assert!(Opts::try_parse_from(["vmsbench", "run", "--cipher", "rc4"]).is_err());
    }
}
