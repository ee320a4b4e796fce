//! `vmsbench certs`: make, look at and check the certificates of a deployment.
//!
//! - [`generate`]: a CA (optionally with an intermediate CA) and, per host, a server
//!   certificate, its chain, its private key and a password-protected PKCS#12 (.pfx) file.
//! - [`inspect`]: what is in certificate files (PEM, DER or PKCS#12), as text or JSON.
//! - [`check`]: whether a host's certificate, chain and key are fit to serve TLS, one line
//!   per problem.
//!
//! Everything is printed to the given writers; private keys never are.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::SystemTime;

use clap::Parser;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub mod check;
pub mod generate;
pub mod inspect;

pub use check::CheckArgs;
pub use generate::GenerateArgs;
pub use inspect::InspectArgs;

/// Exit code: everything is fine.
pub const EXIT_OK: u8 = 0;
/// Exit code: `check` found problems (or warnings, with `--strict`).
pub const EXIT_PROBLEMS: u8 = 1;
/// Exit code: bad usage, or input that cannot be used (missing or unreadable files, garbage).
pub const EXIT_USAGE: u8 = 2;

/// `vmsbench certs`: make, inspect and check the deployment's certificates.
#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CertsCommand,
}

/// The `certs` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CertsCommand {
    /// Generate a CA and, per host, a server certificate, chain, key and PKCS#12 (.pfx) file.
    Generate(GenerateArgs),
    /// Show what is in certificate files (PEM, DER or PKCS#12).
    Inspect(InspectArgs),
    /// Check that a host's certificate, chain and key are fit to serve TLS.
    Check(CheckArgs),
}

/// The `certs` arguments on their own, for [`run_from_args`].
#[derive(Debug, Parser)]
#[command(
    name = "vmsbench certs",
    bin_name = "vmsbench certs",
    no_binary_name = true
)]
struct CertsCli {
    #[command(flatten)]
    args: CertsArgs,
}

/// Runs a certs subcommand, printing to stdout (errors about the input to stderr); returns
/// the process exit code: 0 ok, 1 problems found (`check`), 2 usage / unusable input.
///
/// An `Err` is a failure of the machinery rather than of the input (e.g. a write into the
/// output directory failing half-way, or stdout closed).
pub fn run(args: &CertsArgs) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let stderr = io::stderr();
    run_with(args, &mut stdout.lock(), &mut stderr.lock())
}

/// [`run`], printing results to `out` and errors about the input to `err`.
pub fn run_with(
    args: &CertsArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let result = match &args.command {
        CertsCommand::Generate(a) => generate::run(a, out),
        CertsCommand::Inspect(a) => inspect::run(a, out, err),
        CertsCommand::Check(a) => check::run(a, out),
    };
    match result {
        Ok(code) => Ok(ExitCode::from(code)),
        Err(e) => match e.downcast_ref::<UsageError>() {
            Some(usage) => {
                writeln!(err, "error: {usage}")?;
                Ok(ExitCode::from(EXIT_USAGE))
            }
            None => Err(e),
        },
    }
}

/// Parses the arguments that follow `vmsbench certs` (e.g. `["generate", "--hosts",
/// "a.vms.test", "--out", "dir"]`) and runs them like [`run`]. A parse error is printed to
/// stderr and gives exit code 2; `--help` prints to stdout and gives 0.
pub fn run_from_args<I, T>(args: I) -> anyhow::Result<ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let stdout = io::stdout();
    let stderr = io::stderr();
    run_from_args_with(args, &mut stdout.lock(), &mut stderr.lock())
}

/// [`run_from_args`], printing results to `out` and errors to `err`.
pub fn run_from_args_with<I, T>(
    args: I,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match CertsCli::try_parse_from(args) {
        Ok(cli) => run_with(&cli.args, out, err),
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                write!(err, "{text}")?;
                Ok(ExitCode::from(EXIT_USAGE))
            } else {
                write!(out, "{text}")?;
                Ok(ExitCode::from(EXIT_OK))
            }
        }
    }
}

/// Bad usage or unusable input: printed as `error: …` and exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Returns early with a [`UsageError`].
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::commands::certs::UsageError(format!($($arg)*))))
    };
}
pub(crate) use usage;

/// A password given on the command line or in the environment; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl FromStr for Password {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Password(s.to_owned()))
    }
}

/// Reads a whole file, with an error that names it and says what went wrong.
pub(crate) fn read_input(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) => match e.kind() {
            io::ErrorKind::NotFound => usage!("{what} {} does not exist", path.display()),
            io::ErrorKind::PermissionDenied => usage!(
                "{what} {} cannot be read by this user: permission denied",
                path.display()
            ),
            io::ErrorKind::IsADirectory => {
                usage!("{what} {} is a directory, not a file", path.display())
            }
            _ => usage!("cannot read {what} {}: {e}", path.display()),
        },
    }
}

/// Whether `bytes` look like PEM text.
pub(crate) fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// The certificates of a PEM or DER file (not PKCS#12), each checked to parse as X.509.
/// `Ok(None)` when the bytes are neither PEM nor a DER certificate.
pub(crate) fn certificates_from_pem_or_der(
    path: &Path,
    bytes: &[u8],
) -> anyhow::Result<Option<Vec<CertificateDer<'static>>>> {
    if is_pem(bytes) {
        let mut certs = Vec::new();
        for (i, item) in CertificateDer::pem_slice_iter(bytes).enumerate() {
            match item {
                Ok(cert) => certs.push(cert),
                Err(e) => usage!(
                    "{}: PEM block {} cannot be decoded: {e}",
                    path.display(),
                    i + 1
                ),
            }
        }
        if certs.is_empty() {
            if PrivateKeyDer::from_pem_slice(bytes).is_ok() {
                usage!("{} holds a private key, not a certificate", path.display());
            }
            usage!("{} is PEM but holds no CERTIFICATE block", path.display());
        }
        for (i, cert) in certs.iter().enumerate() {
            if let Err(e) = x509_parser::parse_x509_certificate(cert) {
                usage!(
                    "{}: certificate {} is not valid X.509: {e}",
                    path.display(),
                    i + 1
                );
            }
        }
        return Ok(Some(certs));
    }
    match x509_parser::parse_x509_certificate(bytes) {
        Ok(_) => Ok(Some(vec![CertificateDer::from(bytes.to_vec())])),
        Err(_) => Ok(None),
    }
}

/// Seconds since the Unix epoch (negative before it).
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Whole days from `now` until `then`, rounded down (so an expiry 12 hours ago is -1 and
/// one in 12 hours is 0).
pub(crate) fn days_between(now: i64, then: i64) -> i64 {
    then.saturating_sub(now).div_euclid(86_400)
}

/// An instant as RFC 3339 UTC (`2026-01-01T00:00:00Z`), for any year.
pub(crate) fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Lowercase hex without separators.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_any_year() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_600), "2026-01-01T00:00:00Z");
        assert_eq!(rfc3339(-631_152_000), "1950-01-01T00:00:00Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(951_827_696), "2000-02-29T12:34:56Z");
    }

    #[test]
    fn days_round_down() {
        assert_eq!(days_between(0, 43_200), 0);
        assert_eq!(days_between(0, -43_200), -1);
        assert_eq!(days_between(0, 86_400 * 3), 3);
    }
}
