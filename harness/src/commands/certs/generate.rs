//! `vmsbench certs generate`: a CA, an optional intermediate CA and, per host, a server
//! certificate with its chain, private key and password-protected PKCS#12 file.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use p12_keystore::{
    EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey, PrivateKeyChain,
};
use sha2::{Digest, Sha256};
use simulators::pki::{
    CertificateAuthority, HostIdentity, KeyType, PkiError, Validity, DEFAULT_CA_NAME,
};

use super::{rfc3339, unix_secs, usage, Password, EXIT_OK};

/// How long the CA and the intermediate CA stay valid, at least (and always long enough to
/// cover every host certificate).
const CA_DAYS: u64 = 3650;
/// How far back validity starts by default, to tolerate clocks slightly behind.
const CLOCK_SKEW: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
/// Characters of generated PFX passwords: 32 of them (5 bits each), none easily confused.
const PASSWORD_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Length of generated PFX passwords (120 bits).
const PASSWORD_LEN: usize = 24;
/// File mode of private keys and PKCS#12 files.
const SECRET_MODE: u32 = 0o600;
/// File mode of certificates.
const PUBLIC_MODE: u32 = 0o644;

/// `vmsbench certs generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Host names (FQDNs or IP addresses) to issue a server certificate for, comma-separated
    /// or repeated. Each is the certificate's CN and first SAN, and names its files.
    #[arg(
        long,
        value_name = "NAME[,NAME…]",
        value_delimiter = ',',
        required = true
    )]
    pub hosts: Vec<String>,
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Key type of every key: rsa2048, rsa3072, rsa4096, ecdsa-p256 or ecdsa-p384.
    #[arg(long, value_name = "TYPE", default_value_t = KeyType::Rsa2048)]
    pub key: KeyType,
    /// Days the host certificates stay valid (from now, or from --not-before): 1 to 36500.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 365,
        conflicts_with = "not_after",
        value_parser = clap::value_parser!(u32).range(1..=36_500)
    )]
    pub days: u32,
    /// Start of the host certificates' validity, RFC 3339 (e.g. 2026-01-01T00:00:00Z, or a
    /// bare date); default an hour ago.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub not_before: Option<SystemTime>,
    /// End of the host certificates' validity, RFC 3339; default --days after the start.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub not_after: Option<SystemTime>,
    /// Issue the host certificates from an intermediate CA (signed by the CA, path length 0)
    /// instead of from the CA itself.
    #[arg(long)]
    pub intermediate: bool,
    /// An extra subject alternative name (short name, other FQDN or IP address) added to
    /// every host's certificate; repeatable.
    #[arg(long = "san", value_name = "NAME")]
    pub sans: Vec<String>,
    /// Common name of the CA.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_CA_NAME)]
    pub ca_name: String,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
    /// Password of the .pfx files; default: a random one, printed once.
    #[arg(
        long,
        value_name = "PASS",
        env = "VMSBENCH_PFX_PASSWORD",
        hide_env_values = true
    )]
    pub pfx_password: Option<Password>,
    /// Encrypt the .pfx files with 3DES and a SHA-1 MAC instead of AES-256 and SHA-256, for
    /// Windows Server 2016 and older, which cannot import the modern form.
    #[arg(long)]
    pub pfx_legacy: bool,
}

/// Parses an RFC 3339 time (`2026-01-01T00:00:00Z`, also without the zone or with a space),
/// or a bare date meaning its midnight UTC.
fn parse_time(s: &str) -> Result<SystemTime, String> {
    let s = s.trim();
    let full = if s.len() == 10 && !s.contains(['T', 't', ' ']) {
        format!("{s}T00:00:00Z")
    } else {
        s.to_owned()
    };
    humantime::parse_rfc3339_weak(&full)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-01-01T00:00:00Z ({e})"))
}

/// One file to write.
struct Output {
    path: PathBuf,
    contents: Vec<u8>,
    mode: u32,
    what: String,
}

pub(crate) fn run(args: &GenerateArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let hosts = host_names(&args.hosts)?;
    for name in &args.sans {
        check_name(name, "--san")?;
    }
    let (leaf_validity, ca_validity) = validities(args)?;
    check_targets(args, &target_names(args, &hosts))?;
    let (password, generated) = pfx_password(args)?;

    let (root, intermediate) = authorities(args, ca_validity)?;
    let issuer = intermediate.as_ref().unwrap_or(&root);
    let mut outputs = ca_outputs(&args.out, &root, intermediate.as_ref());
    let mut identities = Vec::with_capacity(hosts.len());
    for host in &hosts {
        let identity = issuer
            .issue(host, &args.sans, args.key, leaf_validity)
            .map_err(pki_error)?;
        let pfx = pfx(&identity, &root, host, &password, args.pfx_legacy)
            .with_context(|| format!("could not build the PKCS#12 file for {host}"))?;
        outputs.extend(host_outputs(&args.out, host, &identity, pfx));
        identities.push(identity);
    }

    fs::create_dir_all(&args.out)
        .with_context(|| format!("could not create the directory {}", args.out.display()))?;
    for output in &outputs {
        write_new(output, args.force)?;
    }

    print_files(
        out,
        args,
        &root,
        intermediate.as_ref(),
        &outputs,
        identities.len(),
    )?;
    print_expiries(out, &root, &identities)?;
    if generated {
        writeln!(
            out,
            "PFX password (generated, shown only this once): {password}"
        )?;
    } else {
        writeln!(out, "PFX password: the one given")?;
    }
    Ok(EXIT_OK)
}

/// The names of every file to write: the CA's, the intermediate CA's and each host's.
fn target_names(args: &GenerateArgs, hosts: &[String]) -> Vec<String> {
    let mut names: Vec<String> = vec!["ca.pem".into(), "ca.key.pem".into()];
    if args.intermediate {
        names.extend(["intermediate.pem".into(), "intermediate.key.pem".into()]);
    }
    for host in hosts {
        for ext in ["pem", "chain.pem", "key.pem", "pfx"] {
            names.push(format!("{host}.{ext}"));
        }
    }
    names
}

/// Checks every target before anything is generated or written: `--out` must be a
/// directory (or not exist yet), and without `--force` none of `names` may exist in it.
fn check_targets(args: &GenerateArgs, names: &[String]) -> anyhow::Result<()> {
    if args.out.exists() && !args.out.is_dir() {
        usage!("--out {} exists and is not a directory", args.out.display());
    }
    if !args.force {
        for name in names {
            let path = args.out.join(name);
            if fs::symlink_metadata(&path).is_ok() {
                usage!(
                    "{} already exists; nothing was written (pass --force to overwrite)",
                    path.display()
                );
            }
        }
    }
    Ok(())
}

/// The PFX password, and whether it was generated: the one given (not empty), else a
/// random one.
fn pfx_password(args: &GenerateArgs) -> anyhow::Result<(String, bool)> {
    Ok(match &args.pfx_password {
        Some(p) if p.0.is_empty() => usage!("the PFX password must not be empty"),
        Some(p) => (p.0.clone(), false),
        None => (random_password()?, true),
    })
}

/// The CA and, with `--intermediate`, an intermediate CA it signs.
fn authorities(
    args: &GenerateArgs,
    validity: Validity,
) -> anyhow::Result<(CertificateAuthority, Option<CertificateAuthority>)> {
    let root =
        CertificateAuthority::generate(&args.ca_name, args.key, validity).map_err(pki_error)?;
    let intermediate = if args.intermediate {
        let name = format!("{} intermediate", args.ca_name);
        Some(
            root.issue_intermediate(&name, args.key, validity)
                .map_err(pki_error)?,
        )
    } else {
        None
    };
    Ok((root, intermediate))
}

/// The files of the CA and of the intermediate CA, if any, in `dir`.
fn ca_outputs(
    dir: &Path,
    root: &CertificateAuthority,
    intermediate: Option<&CertificateAuthority>,
) -> Vec<Output> {
    let mut outputs = vec![
        Output {
            path: dir.join("ca.pem"),
            contents: root.cert_pem().into_bytes(),
            mode: PUBLIC_MODE,
            what: "CA certificate: install it as trusted on every client".into(),
        },
        Output {
            path: dir.join("ca.key.pem"),
            contents: root.key_pem().into_bytes(),
            mode: SECRET_MODE,
            what: "CA private key: keep it away from the servers".into(),
        },
    ];
    if let Some(inter) = intermediate {
        outputs.push(Output {
            path: dir.join("intermediate.pem"),
            contents: inter.cert_pem().into_bytes(),
            mode: PUBLIC_MODE,
            what: "intermediate CA certificate (also in every chain file)".into(),
        });
        outputs.push(Output {
            path: dir.join("intermediate.key.pem"),
            contents: inter.key_pem().into_bytes(),
            mode: SECRET_MODE,
            what: "intermediate CA private key".into(),
        });
    }
    outputs
}

/// The files of one host in `dir`: its certificate, its chain, its private key and its
/// PKCS#12 file (`pfx`).
fn host_outputs(dir: &Path, host: &str, identity: &HostIdentity, pfx: Vec<u8>) -> [Output; 4] {
    [
        Output {
            path: dir.join(format!("{host}.pem")),
            contents: identity.cert_pem().into_bytes(),
            mode: PUBLIC_MODE,
            what: format!("{host}: certificate"),
        },
        Output {
            path: dir.join(format!("{host}.chain.pem")),
            contents: identity.chain_pem().into_bytes(),
            mode: PUBLIC_MODE,
            what: format!("{host}: certificate, intermediates and CA"),
        },
        Output {
            path: dir.join(format!("{host}.key.pem")),
            contents: identity.key_pem().into_bytes(),
            mode: SECRET_MODE,
            what: format!("{host}: private key (PKCS#8)"),
        },
        Output {
            path: dir.join(format!("{host}.pfx")),
            contents: pfx,
            mode: SECRET_MODE,
            what: format!("{host}: PKCS#12 with key, certificate and chain"),
        },
    ]
}

/// Prints what was written: how many host certificates, by which CA, and every file with
/// its mode and purpose.
fn print_files(
    out: &mut dyn Write,
    args: &GenerateArgs,
    root: &CertificateAuthority,
    intermediate: Option<&CertificateAuthority>,
    outputs: &[Output],
    hosts: usize,
) -> io::Result<()> {
    let via = match intermediate {
        Some(i) => format!(" via intermediate {:?}", i.common_name()),
        None => String::new(),
    };
    writeln!(
        out,
        "wrote {} host certificate(s) into {}, issued by CA {:?}{via} ({} keys):",
        hosts,
        args.out.display(),
        root.common_name(),
        args.key
    )?;
    for output in outputs {
        writeln!(
            out,
            "  {}  (mode {:o})  {}",
            output.path.display(),
            output.mode,
            output.what
        )?;
    }
    Ok(())
}

/// Prints the serial number and expiry of the CA and of each host certificate, with the
/// hosts' days left and names.
fn print_expiries(
    out: &mut dyn Write,
    root: &CertificateAuthority,
    identities: &[HostIdentity],
) -> io::Result<()> {
    let now = unix_secs(SystemTime::now());
    writeln!(
        out,
        "CA {:?}: serial {}, expires {}",
        root.common_name(),
        root.serial_hex(),
        rfc3339(unix_secs(root.validity().not_after))
    )?;
    for identity in identities {
        let not_after = unix_secs(identity.validity().not_after);
        writeln!(
            out,
            "host {}: serial {}, expires {} (in {} days), SANs: {}",
            identity.host(),
            identity.serial_hex(),
            rfc3339(not_after),
            super::days_between(now, not_after),
            identity.subject_alt_names().join(", ")
        )?;
    }
    Ok(())
}

/// The hosts, trimmed, without empty entries or duplicates (ignoring case), each checked to
/// be a DNS name or IP address (which also keeps them safe as file names).
fn host_names(given: &[String]) -> anyhow::Result<Vec<String>> {
    let mut hosts: Vec<String> = Vec::new();
    for name in given.iter().map(|h| h.trim()).filter(|h| !h.is_empty()) {
        check_name(name, "--hosts")?;
        if !hosts.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            hosts.push(name.to_owned());
        }
    }
    if hosts.is_empty() {
        usage!("--hosts names no host");
    }
    Ok(hosts)
}

fn check_name(name: &str, flag: &str) -> anyhow::Result<()> {
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if let Err(e) = rustls_pki_types::DnsName::try_from(name) {
        usage!(
            "{flag}: {name:?} is neither a DNS name (letters, digits, '-' and '.') nor an IP \
             address ({e})"
        );
    }
    Ok(())
}

/// The host certificates' validity, and the CA's: at least [`CA_DAYS`] from now and
/// covering every host certificate.
fn validities(args: &GenerateArgs) -> anyhow::Result<(Validity, Validity)> {
    let now = SystemTime::now();
    let days = DAY * args.days;
    let not_before = args
        .not_before
        .unwrap_or_else(|| now.checked_sub(CLOCK_SKEW).unwrap_or(now));
    let not_after = match (args.not_after, args.not_before) {
        (Some(t), _) => Some(t),
        (None, Some(start)) => start.checked_add(days),
        (None, None) => now.checked_add(days),
    };
    let Some(not_after) = not_after else {
        usage!("--days {} reaches beyond the year 9999", args.days);
    };
    if not_after <= not_before {
        usage!(
            "the certificates would end ({}) before they start ({}); check --not-before, \
             --not-after and --days",
            rfc3339(unix_secs(not_after)),
            rfc3339(unix_secs(not_before))
        );
    }
    let leaf = Validity {
        not_before,
        not_after,
    };
    let ca_start = now.checked_sub(CLOCK_SKEW).unwrap_or(now).min(not_before);
    let ca_end = now
        .checked_add(DAY * u32::try_from(CA_DAYS).unwrap_or(u32::MAX))
        .map_or(not_after, |t| t.max(not_after));
    Ok((
        leaf,
        Validity {
            not_before: ca_start,
            not_after: ca_end,
        },
    ))
}

/// Issuing errors that come from the input become usage errors.
fn pki_error(e: PkiError) -> anyhow::Error {
    match e {
        PkiError::InvalidName { .. } | PkiError::InvalidValidity(_) => {
            anyhow::Error::new(super::UsageError(e.to_string()))
        }
        other => anyhow::Error::new(other),
    }
}

/// A random password from [`PASSWORD_ALPHABET`], drawn from the provider's secure RNG.
fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; PASSWORD_LEN];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("could not draw random bytes for the PFX password"))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(PASSWORD_ALPHABET[usize::from(b & 31)]))
        .collect())
}

/// A PKCS#12 file holding the host's key, certificate, intermediates and the root, the
/// key's friendly name being the host name.
fn pfx(
    identity: &HostIdentity,
    root: &CertificateAuthority,
    host: &str,
    password: &str,
    legacy: bool,
) -> anyhow::Result<Vec<u8>> {
    let key = PrivateKey::from_der(identity.private_key().secret_der())?;
    let mut certs = Vec::with_capacity(identity.chain().len() + 1);
    for der in identity.chain().iter().chain([root.root_cert_der()]) {
        certs.push(p12_keystore::Certificate::from_der(der)?);
    }
    // The chain always starts with the leaf; the ID only has to be the same on the key
    // and its certificate.
    let leaf = identity.chain().first().map_or(&[][..], |c| &c[..]);
    let local_key_id = Sha256::digest(leaf)[..20].to_vec();
    let mut store = KeyStore::new();
    store.add_entry(
        host,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, key, certs)),
    );
    let mut writer = store.writer(password);
    if legacy {
        writer = writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .mac_algorithm(MacAlgorithm::HmacSha1);
    }
    Ok(writer.write()?)
}

/// Writes one file, created with its final mode (never widened, never chmod-ed after).
/// With `force` an existing file is removed first, so that its old mode does not survive.
fn write_new(output: &Output, force: bool) -> anyhow::Result<()> {
    let path: &Path = &output.path;
    if force {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("could not replace {}", path.display()))
            }
        }
    }
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(output.mode)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => usage!(
            "{} already exists (it appeared while writing); pass --force to overwrite",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("could not create {}", path.display())),
    };
    file.write_all(&output.contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("could not write {}", path.display()))
}
