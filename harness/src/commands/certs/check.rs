//! `vmsbench certs check`: is a host's certificate, chain and key fit to serve TLS?
//!
//! The chain, host name, extended key usage and validity are checked by rustls's webpki
//! verifier, exactly as a client would; the same properties are also checked one by one so
//! that each problem gets its own line, even those the verifier stops before reaching.

use std::fs;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use simulators::transport::{explain, FailureCategory};

use super::inspect::{describe, CertInfo};
use super::{
    certificates_from_pem_or_der, is_pem, read_input, unix_secs, usage, EXIT_OK, EXIT_PROBLEMS,
};

/// The smallest RSA key accepted.
const MIN_RSA_BITS: u32 = 2048;

/// `vmsbench certs check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A directory written by `certs generate` (HOST.chain.pem, else HOST.pem; HOST.key.pem
    /// and ca.pem in it), or a certificate file (PEM or DER, the leaf first and any
    /// intermediates after it; the key is looked for beside it as NAME.key.pem).
    #[arg(value_name = "DIR|FILE")]
    pub target: PathBuf,
    /// The host name (or IP address) clients connect to.
    #[arg(long, value_name = "NAME")]
    pub host: String,
    /// The CA certificate(s) clients trust (PEM or DER); default ca.pem in the directory.
    #[arg(long, value_name = "CA.pem")]
    pub ca: Option<PathBuf>,
    /// The private key (PEM or DER); default HOST.key.pem in the directory.
    #[arg(long, value_name = "KEY.pem")]
    pub key: Option<PathBuf>,
    /// Warn when the certificate expires within this many days: 0 to 36500.
    #[arg(long, value_name = "DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=36_500))]
    pub warn_days: u32,
    /// Treat warnings as problems (exit code 1).
    #[arg(long)]
    pub strict: bool,
}

/// What was found, in the order it was found.
#[derive(Default)]
struct Findings {
    /// Problems, each with the category a client would report it as (if any).
    problems: Vec<(Option<FailureCategory>, String)>,
    warnings: Vec<String>,
}

impl Findings {
    fn problem(&mut self, category: Option<FailureCategory>, line: String) {
        self.problems.push((category, line));
    }

    fn warn(&mut self, line: String) {
        self.warnings.push(line);
    }

    fn has(&self, category: FailureCategory) -> bool {
        self.problems.iter().any(|(c, _)| *c == Some(category))
    }
}

/// The files a check reads.
struct Inputs {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

pub(crate) fn run(args: &CheckArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let host = args.host.trim();
    let server_name = match ServerName::try_from(host) {
        Ok(name) => name.to_owned(),
        Err(e) => usage!("--host {host:?} is neither a DNS name nor an IP address ({e})"),
    };
    let inputs = resolve(args, host)?;

    let cert_bytes = read_input(&inputs.cert, "certificate file")?;
    let Some(chain) = certificates_from_pem_or_der(&inputs.cert, &cert_bytes)? else {
        usage!(
            "{} is neither a PEM nor a DER certificate",
            inputs.cert.display()
        );
    };
    let ca_bytes = read_input(&inputs.ca, "CA certificate")?;
    let Some(cas) = certificates_from_pem_or_der(&inputs.ca, &ca_bytes)? else {
        usage!(
            "CA certificate {} is neither a PEM nor a DER certificate",
            inputs.ca.display()
        );
    };
    let Some((leaf, rest)) = chain.split_first() else {
        usage!("{} holds no certificate", inputs.cert.display());
    };
    let intermediates: Vec<CertificateDer<'static>> =
        rest.iter().filter(|c| !cas.contains(c)).cloned().collect();
    let now = unix_secs(SystemTime::now());
    let file = inputs.cert.display().to_string();
    let info = match describe(leaf, &file, 1, "", now) {
        Ok(info) => info,
        Err(e) => usage!("{file}: the certificate cannot be read: {e}"),
    };
    let ca_names: Vec<String> = cas
        .iter()
        .filter_map(|c| describe(c, "", 0, "", now).ok())
        .map(|c| c.subject)
        .collect();

    writeln!(
        out,
        "checking host {host}: certificate {file}, key {}, CA {}",
        inputs.key.display(),
        inputs.ca.display()
    )?;
    let mut findings = Findings::default();
    check_certificate(host, &info, args.warn_days, &mut findings);
    check_chain(
        host,
        &server_name,
        leaf,
        &intermediates,
        &cas,
        &inputs,
        &mut findings,
    )?;
    check_key(&inputs.key, leaf, &mut findings)?;

    for (_, line) in &findings.problems {
        writeln!(out, "problem: {line}")?;
    }
    for line in &findings.warnings {
        writeln!(out, "warning: {line}")?;
    }
    let (p, w) = (findings.problems.len(), findings.warnings.len());
    if p > 0 {
        writeln!(out, "FAILED host {host}: {p} problem(s), {w} warning(s)")?;
        return Ok(EXIT_PROBLEMS);
    }
    if w > 0 && args.strict {
        writeln!(
            out,
            "FAILED host {host}: {w} warning(s), which --strict counts as problems"
        )?;
        return Ok(EXIT_PROBLEMS);
    }
    writeln!(
        out,
        "OK host {host}: chain verifies to {}, private key matches; expires in {} days ({})",
        ca_names.first().map_or("the CA", String::as_str),
        info.days_left,
        info.not_after
    )?;
    Ok(EXIT_OK)
}

/// Which certificate, key and CA files to read.
fn resolve(args: &CheckArgs, host: &str) -> anyhow::Result<Inputs> {
    let target = &args.target;
    let meta = match fs::metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            usage!("{} does not exist", target.display())
        }
        Err(e) => usage!("cannot read {}: {e}", target.display()),
    };
    if meta.is_dir() {
        let chain = target.join(format!("{host}.chain.pem"));
        let leaf = target.join(format!("{host}.pem"));
        let cert = if chain.exists() {
            chain
        } else if leaf.exists() {
            leaf
        } else {
            usage!(
                "{} has no certificate for {host} (looked for {} and {})",
                target.display(),
                chain.display(),
                leaf.display()
            );
        };
        return Ok(Inputs {
            cert,
            key: args
                .key
                .clone()
                .unwrap_or_else(|| target.join(format!("{host}.key.pem"))),
            ca: args.ca.clone().unwrap_or_else(|| target.join("ca.pem")),
        });
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    let key = match &args.key {
        Some(k) => k.clone(),
        None => {
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let stem = [".chain.pem", ".pem", ".crt", ".cer", ".der"]
                .iter()
                .find_map(|ext| name.strip_suffix(ext));
            match stem {
                Some(stem) if !stem.is_empty() => dir.join(format!("{stem}.key.pem")),
                _ => usage!(
                    "cannot tell where the private key of {} is; give it with --key",
                    target.display()
                ),
            }
        }
    };
    let ca = match &args.ca {
        Some(ca) => ca.clone(),
        None => {
            let ca = dir.join("ca.pem");
            if !ca.exists() {
                usage!(
                    "no CA certificate given and {} does not exist; give the CA with --ca",
                    ca.display()
                );
            }
            ca
        }
    };
    Ok(Inputs {
        cert: target.clone(),
        key,
        ca,
    })
}

/// Validity, host name, extended key usage and key size, from the certificate alone.
fn check_certificate(host: &str, info: &CertInfo, warn_days: u32, findings: &mut Findings) {
    if info.expired {
        findings.problem(
            Some(FailureCategory::Expired),
            format!(
                "the certificate for {host} expired on {} ({} day(s) ago); clients refuse it: \
                 renew it from the CA and restart the service presenting it",
                info.not_after, -info.days_left
            ),
        );
    } else if info.not_yet_valid {
        findings.problem(
            Some(FailureCategory::NotYetValid),
            format!(
                "the certificate for {host} is not valid before {}; clients refuse it until \
                 then: check the clocks of this host and of the one that issued it",
                info.not_before
            ),
        );
    } else if info.days_left < i64::from(warn_days) {
        findings.warn(format!(
            "the certificate for {host} expires in {} day(s) ({}), within --warn-days {warn_days}; \
             renew it before then (after expiry clients cannot connect)",
            info.days_left, info.not_after
        ));
    }

    if !names_match(host, &info.sans) {
        let hint = name_hint(host, &info.sans);
        let sans = if info.sans.is_empty() {
            "it has none".to_owned()
        } else {
            info.sans.join(", ")
        };
        findings.problem(
            Some(FailureCategory::WrongHost),
            format!(
                "{host} is not among the certificate's subject alternative names ({sans}){hint}; \
                 reissue it with {host} in its SANs, or connect with a name it carries"
            ),
        );
    }

    if info.eku.is_empty() {
        findings.warn(
            "the certificate has no extended key usage extension; most clients accept that, \
             but a server certificate should say serverAuth"
                .to_owned(),
        );
    } else if !info.eku.iter().any(|e| e == "serverAuth") {
        findings.problem(
            Some(FailureCategory::BadUsage),
            format!(
                "the certificate's extended key usage ({}) lacks serverAuth, so TLS clients \
                 refuse it as a server certificate; reissue it with EKU serverAuth",
                info.eku.join(", ")
            ),
        );
    }

    if info.key_type == "rsa" && info.key_bits < MIN_RSA_BITS {
        findings.problem(
            None,
            format!(
                "the certificate's RSA key has {} bits, fewer than the {MIN_RSA_BITS} clients \
                 require; reissue it with a key of at least rsa2048",
                info.key_bits
            ),
        );
    }
}

/// Whether `host` is covered by one of the SANs (DNS names case-insensitively, a leading
/// `*.` matching one label; IP addresses by value).
fn names_match(host: &str, sans: &[String]) -> bool {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return sans.iter().any(|s| s.parse::<IpAddr>().ok() == Some(ip));
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    sans.iter().any(|san| {
        let san = san.trim_end_matches('.').to_ascii_lowercase();
        match san.strip_prefix("*.") {
            Some(suffix) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
            None => san == host,
        }
    })
}

/// Why a name may be missing, for the common mix-ups: IP address vs name, short name vs
/// FQDN.
fn name_hint(host: &str, sans: &[String]) -> String {
    if host.parse::<IpAddr>().is_ok() {
        return " (an IP address is only matched by an IP address SAN)".to_owned();
    }
    let host_lc = host.to_ascii_lowercase();
    let short = host_lc.split('.').next().unwrap_or_default().to_owned();
    for san in sans {
        let san_lc = san.to_ascii_lowercase();
        if !host_lc.contains('.') && san_lc.split('.').next() == Some(host_lc.as_str()) {
            return format!(" (the short name {host} is not the FQDN {san}: both must be SANs)");
        }
        if host_lc.contains('.') && !san_lc.contains('.') && san_lc == short {
            return format!(" (it has the short name {san}, not the FQDN)");
        }
    }
    String::new()
}

/// The chain, as a client verifies it: rustls's webpki verifier with the CA as the only
/// root. Its error goes in as one line unless the same problem was found already.
fn check_chain(
    host: &str,
    server_name: &ServerName<'static>,
    leaf: &CertificateDer<'static>,
    intermediates: &[CertificateDer<'static>],
    cas: &[CertificateDer<'static>],
    inputs: &Inputs,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let mut roots = RootCertStore::empty();
    for (i, ca) in cas.iter().enumerate() {
        if let Err(e) = roots.add(ca.clone()) {
            usage!(
                "CA file {}: certificate {} cannot be used as a trust anchor: {e}",
                inputs.ca.display(),
                i + 1
            );
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| anyhow::anyhow!("could not build a certificate verifier: {e}"))?;
    let Err(err) =
        verifier.verify_server_cert(leaf, intermediates, server_name, &[], UnixTime::now())
    else {
        return Ok(());
    };
    let (category, message) = explain(&err, host);
    if findings.has(category) {
        return Ok(());
    }
    if category == FailureCategory::UntrustedCa {
        if let Some(issuer) = missing_issuer(leaf, intermediates, cas) {
            findings.problem(
                Some(category),
                format!(
                    "the chain is incomplete: the certificate was issued by {issuer}, which is \
                     neither the CA in {} nor a certificate following it in {}; serve the full \
                     chain (HOST.chain.pem) that includes the intermediate CA",
                    inputs.ca.display(),
                    inputs.cert.display()
                ),
            );
            return Ok(());
        }
        findings.problem(
            Some(category),
            format!("{message} (trusted CA here: {})", inputs.ca.display()),
        );
        return Ok(());
    }
    findings.problem(Some(category), message);
    Ok(())
}

/// The leaf's issuer name when no certificate at hand (intermediates or CAs) has it as its
/// subject: the sign of a missing intermediate.
fn missing_issuer(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    cas: &[CertificateDer<'_>],
) -> Option<String> {
    let (_, leaf) = x509_parser::parse_x509_certificate(leaf).ok()?;
    let issuer = leaf.issuer().as_raw();
    let known = intermediates.iter().chain(cas).any(|c| {
        x509_parser::parse_x509_certificate(c).is_ok_and(|(_, c)| c.subject().as_raw() == issuer)
    });
    (!known).then(|| leaf.issuer().to_string())
}

/// A private key file's key: PKCS#8, PKCS#1 or SEC1, in PEM or DER.
pub(crate) fn read_key(bytes: Vec<u8>) -> Result<PrivateKeyDer<'static>, String> {
    if is_pem(&bytes) {
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| e.to_string())
    } else {
        PrivateKeyDer::try_from(bytes).map_err(str::to_owned)
    }
}

/// The private key: present, readable, loadable, matching the certificate, not readable by
/// group or others.
fn check_key(
    path: &Path,
    leaf: &CertificateDer<'_>,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let shown = path.display();
    match fs::metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                findings.warn(format!(
                    "the private key {shown} has mode {mode:03o}: group or others may read it; \
                     make it 600, owned by the service account that runs the server"
                ));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            findings.problem(
                None,
                format!(
                    "the private key {shown} is missing: the server cannot present the \
                     certificate without it; install the key generated with the certificate"
                ),
            );
            return Ok(());
        }
        Err(_) => {}
    }
    let mut bytes = Vec::new();
    let read = fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes));
    if let Err(e) = read {
        let line = if e.kind() == io::ErrorKind::PermissionDenied {
            format!(
                "the private key {shown} cannot be read by this user: permission denied; the \
                 service account that runs the server must be able to read it"
            )
        } else {
            format!("the private key {shown} cannot be read: {e}")
        };
        findings.problem(None, line);
        return Ok(());
    }
    let key = match read_key(bytes) {
        Ok(key) => key,
        Err(e) => {
            findings.problem(
                None,
                format!(
                    "{shown} holds no private key this tool can read (PKCS#8, PKCS#1 or SEC1; \
                     PEM or DER): {e}"
                ),
            );
            return Ok(());
        }
    };
    let signer = match rustls::crypto::aws_lc_rs::sign::any_supported_type(&key) {
        Ok(signer) => signer,
        Err(e) => {
            findings.problem(
                None,
                format!("the private key {shown} cannot be used for TLS: {e}"),
            );
            return Ok(());
        }
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
        return Ok(());
    };
    match signer.public_key() {
        Some(spki) if spki.as_ref() == cert.public_key().raw => {}
        Some(_) => findings.problem(
            None,
            format!(
                "the private key {shown} does not belong to the certificate (their public keys \
                 differ); install the key that was generated with this certificate"
            ),
        ),
        None => findings.warn(format!(
            "cannot tell whether the private key {shown} matches the certificate"
        )),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sans(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn name_matching() {
        let s = sans(&[
            "recorder-1.vms.test",
            "recorder-1",
            "10.0.0.5",
            "*.cams.vms.test",
        ]);
        assert!(names_match("RECORDER-1.vms.test", &s));
        assert!(names_match("recorder-1", &s));
        assert!(names_match("10.0.0.5", &s));
        assert!(names_match("cam7.cams.vms.test", &s));
        assert!(!names_match("a.b.cams.vms.test", &s));
        assert!(!names_match("recorder-2.vms.test", &s));
        assert!(!names_match("10.0.0.6", &s));
    }

    #[test]
    fn hints_for_short_names_and_ips() {
        let fqdn_only = sans(&["recorder-1.vms.test"]);
        assert!(name_hint("recorder-1", &fqdn_only).contains("short name"));
        assert!(name_hint("10.0.0.5", &fqdn_only).contains("IP address"));
        let short_only = sans(&["recorder-1"]);
        assert!(name_hint("recorder-1.vms.test", &short_only).contains("FQDN"));
    }
}
