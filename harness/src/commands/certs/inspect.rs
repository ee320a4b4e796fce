//! `vmsbench certs inspect`: what is in certificate files (PEM, DER or PKCS#12).

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use p12_keystore::Pkcs12Archive;
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::public_key::PublicKey;

use super::{
    certificates_from_pem_or_der, days_between, hex, read_input, rfc3339, unix_secs, usage,
    Password, UsageError, EXIT_OK, EXIT_USAGE,
};

/// `vmsbench certs inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Certificate files: PEM (one or more certificates), DER, or PKCS#12 (.pfx, .p12; needs
    /// --password).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Password of PKCS#12 files.
    #[arg(
        long,
        value_name = "PASS",
        env = "VMSBENCH_PFX_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<Password>,
    /// Print a JSON array (one object per certificate) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `inspect` reports about one certificate (also its JSON form).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// The file it was read from.
    pub file: String,
    /// Its position in the file, from 1.
    pub index: usize,
    /// How the file was encoded: `pem`, `der` or `pkcs12`.
    pub format: String,
    /// Subject distinguished name, e.g. `CN=recorder-1.vms.test`.
    pub subject: String,
    /// Subject alternative names: DNS names and IP addresses as they are, other kinds with
    /// a prefix (`email:`, `URI:`, …).
    pub sans: Vec<String>,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, lowercase hex without leading zeros.
    pub serial_hex: String,
    /// Start of validity, RFC 3339 UTC.
    pub not_before: String,
    /// End of validity, RFC 3339 UTC.
    pub not_after: String,
    /// Whole days until `not_after`, rounded down; negative once expired.
    pub days_left: i64,
    /// Whether `not_after` has passed.
    pub expired: bool,
    /// Whether `not_before` is still to come.
    pub not_yet_valid: bool,
    /// `rsa`, `ecdsa`, `ed25519`, `ed448`, `dsa`, or `unknown (OID)`.
    pub key_type: String,
    /// Key size in bits (RSA modulus, EC curve); 0 when unknown.
    pub key_bits: u32,
    /// The named curve of an ECDSA key (`P-256`, `P-384`, `P-521`, or its OID).
    pub curve: Option<String>,
    /// The algorithm the issuer signed with, e.g. `sha256WithRSAEncryption`.
    pub signature_algorithm: String,
    /// Key usages, e.g. `digitalSignature`, `keyCertSign`.
    pub key_usage: Vec<String>,
    /// Extended key usages, e.g. `serverAuth`; empty when the extension is absent.
    pub eku: Vec<String>,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// The CA's path length constraint, if any.
    pub path_len: Option<u32>,
    /// Whether subject and issuer are the same name.
    pub self_signed: bool,
    /// SHA-256 of the DER encoding, uppercase hex pairs separated by colons (as openssl
    /// prints it).
    pub sha256_fingerprint: String,
}

/// The certificates of one file.
pub(crate) struct FileCerts {
    format: &'static str,
    pub(crate) certs: Vec<CertificateDer<'static>>,
    /// Private keys found (PKCS#12 only); never printed, only counted.
    keys: usize,
}

pub(crate) fn run(
    args: &InspectArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    let now = unix_secs(SystemTime::now());
    let password = args.password.as_ref().map(|p| p.0.as_str());
    let mut infos = Vec::new();
    let mut failed = false;
    for path in &args.files {
        let file = path.display().to_string();
        let loaded = match load(path, password) {
            Ok(loaded) => loaded,
            Err(e) => match e.downcast_ref::<UsageError>() {
                Some(usage) => {
                    writeln!(err, "error: {usage}")?;
                    failed = true;
                    continue;
                }
                None => return Err(e),
            },
        };
        let mut file_infos = Vec::with_capacity(loaded.certs.len());
        for (i, der) in loaded.certs.iter().enumerate() {
            match describe(der, &file, i + 1, loaded.format, now) {
                Ok(info) => file_infos.push(info),
                Err(e) => {
                    writeln!(err, "error: {file}: certificate {}: {e}", i + 1)?;
                    failed = true;
                }
            }
        }
        if !args.json {
            print_text(out, &file, &loaded, &file_infos)?;
        }
        infos.extend(file_infos);
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &infos)?;
        writeln!(out)?;
    }
    Ok(if failed { EXIT_USAGE } else { EXIT_OK })
}

fn print_text(
    out: &mut dyn Write,
    file: &str,
    loaded: &FileCerts,
    infos: &[CertInfo],
) -> anyhow::Result<()> {
    let keys = if loaded.format == "pkcs12" {
        format!(", {} private key(s)", loaded.keys)
    } else {
        String::new()
    };
    writeln!(
        out,
        "{file}: {} certificate(s), {}{keys}",
        infos.len(),
        match loaded.format {
            "pem" => "PEM",
            "der" => "DER",
            _ => "PKCS#12",
        }
    )?;
    for info in infos {
        let left = if info.expired {
            format!("EXPIRED {} day(s) ago", -info.days_left)
        } else if info.not_yet_valid {
            "NOT YET VALID".to_owned()
        } else {
            format!("{} day(s) left", info.days_left)
        };
        let key = match &info.curve {
            Some(curve) => format!("{} {curve} ({} bits)", info.key_type, info.key_bits),
            None => format!("{} {} bits", info.key_type, info.key_bits),
        };
        let ca = match (info.is_ca, info.path_len) {
            (true, Some(n)) => format!("yes (path length {n})"),
            (true, None) => "yes".to_owned(),
            (false, _) => "no".to_owned(),
        };
        let list = |v: &[String]| {
            if v.is_empty() {
                "(none)".to_owned()
            } else {
                v.join(", ")
            }
        };
        writeln!(out, "  [{}] subject:   {}", info.index, info.subject)?;
        writeln!(out, "      SANs:      {}", list(&info.sans))?;
        writeln!(
            out,
            "      issuer:    {}{}",
            info.issuer,
            if info.self_signed {
                " (self-signed)"
            } else {
                ""
            }
        )?;
        writeln!(out, "      serial:    {}", info.serial_hex)?;
        writeln!(
            out,
            "      validity:  {} to {} ({left})",
            info.not_before, info.not_after
        )?;
        writeln!(out, "      key:       {key}")?;
        writeln!(out, "      signature: {}", info.signature_algorithm)?;
        writeln!(out, "      key usage: {}", list(&info.key_usage))?;
        writeln!(out, "      EKU:       {}", list(&info.eku))?;
        writeln!(out, "      CA:        {ca}")?;
        writeln!(out, "      SHA-256:   {}", info.sha256_fingerprint)?;
    }
    Ok(())
}

/// Reads the certificates of a PEM, DER or PKCS#12 file.
fn load(path: &Path, password: Option<&str>) -> anyhow::Result<FileCerts> {
    let bytes = read_input(path, "certificate file")?;
    load_bytes(path, &bytes, password)
}

/// Reads the certificates of the PEM, DER or PKCS#12 `bytes` of the file at `path`.
pub(crate) fn load_bytes(
    path: &Path,
    bytes: &[u8],
    password: Option<&str>,
) -> anyhow::Result<FileCerts> {
    if bytes.is_empty() {
        usage!("{} is empty", path.display());
    }
    if let Some(certs) = certificates_from_pem_or_der(path, bytes)? {
        let format = if super::is_pem(bytes) { "pem" } else { "der" };
        return Ok(FileCerts {
            format,
            certs,
            keys: 0,
        });
    }
    if !looks_like_pfx(bytes) {
        usage!(
            "{} is neither PEM, a DER certificate nor a PKCS#12 file",
            path.display()
        );
    }
    let Some(password) = password else {
        usage!(
            "{} is a PKCS#12 (.pfx) file: give its password with --password (or \
             VMSBENCH_PFX_PASSWORD)",
            path.display()
        );
    };
    let archive = match Pkcs12Archive::from_pkcs12(bytes, password) {
        Ok(a) => a,
        Err(p12_keystore::error::Error::MacError(_)) => usage!(
            "{}: wrong password for this PKCS#12 file (its integrity check failed)",
            path.display()
        ),
        Err(e) => usage!(
            "{}: cannot open this PKCS#12 file: {e} (a wrong password, or an encryption \
             this tool does not support)",
            path.display()
        ),
    };
    let certs = archive
        .certs
        .iter()
        .map(|bag| CertificateDer::from(bag.cert.as_der().to_vec()))
        .collect();
    Ok(FileCerts {
        format: "pkcs12",
        certs,
        keys: archive.keys.len(),
    })
}

/// Whether `bytes` have the outer structure of a PKCS#12 PFX: SEQUENCE { INTEGER 3,
/// ContentInfo SEQUENCE { OID data or signedData, … }, … }.
fn looks_like_pfx(bytes: &[u8]) -> bool {
    use x509_parser::der_parser::der::parse_der_sequence;
    let Ok((_, outer)) = parse_der_sequence(bytes) else {
        return false;
    };
    let Ok(items) = outer.as_sequence() else {
        return false;
    };
    let version_ok = items.first().and_then(|v| v.as_u32().ok()) == Some(3);
    let content_ok = items
        .get(1)
        .and_then(|c| c.as_sequence().ok())
        .and_then(|c| c.first())
        .and_then(|o| o.as_oid().ok())
        .map(|o| o.to_id_string())
        .is_some_and(|oid| oid == "1.2.840.113549.1.7.1" || oid == "1.2.840.113549.1.7.2");
    version_ok && content_ok
}

/// Everything `inspect` reports about one DER certificate.
pub fn describe(
    der: &[u8],
    file: &str,
    index: usize,
    format: &str,
    now: i64,
) -> Result<CertInfo, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    let (key_type, key_bits, curve) = key_of(&cert);
    let basic = cert
        .basic_constraints()
        .map_err(|e| format!("bad basicConstraints: {e}"))?;
    Ok(CertInfo {
        file: file.to_owned(),
        index,
        format: format.to_owned(),
        subject: cert.subject().to_string(),
        sans: sans_of(&cert)?,
        issuer: cert.issuer().to_string(),
        serial_hex: serial_hex(cert.raw_serial()),
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        days_left: days_between(now, not_after),
        expired: now > not_after,
        not_yet_valid: now < not_before,
        key_type,
        key_bits,
        curve,
        signature_algorithm: signature_name(&cert.signature_algorithm.algorithm.to_id_string()),
        key_usage: key_usage_of(&cert)?,
        eku: eku_of(&cert)?,
        is_ca: basic.as_ref().is_some_and(|b| b.value.ca),
        path_len: basic.and_then(|b| b.value.path_len_constraint),
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
        sha256_fingerprint: fingerprint(der),
    })
}

/// SHA-256 of `der` as uppercase hex pairs separated by colons.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn serial_hex(raw: &[u8]) -> String {
    let start = raw
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    hex(&raw[start..])
}

/// The subject alternative names (see [`CertInfo::sans`]).
pub(crate) fn sans_of(cert: &X509Certificate<'_>) -> Result<Vec<String>, String> {
    let ext = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subjectAltName: {e}"))?;
    let Some(ext) = ext else {
        return Ok(Vec::new());
    };
    Ok(ext
        .value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => (*dns).to_owned(),
            GeneralName::IPAddress(bytes) => ip_of(bytes)
                .map(|ip| ip.to_string())
                .unwrap_or_else(|| format!("IP:{}", hex(bytes))),
            GeneralName::RFC822Name(mail) => format!("email:{mail}"),
            GeneralName::URI(uri) => format!("URI:{uri}"),
            GeneralName::DirectoryName(dn) => format!("DirName:{dn}"),
            other => format!("{other:?}"),
        })
        .collect())
}

/// An IP address SAN's octets as an address.
pub(crate) fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn key_usage_of(cert: &X509Certificate<'_>) -> Result<Vec<String>, String> {
    let ku = cert.key_usage().map_err(|e| format!("bad keyUsage: {e}"))?;
    let Some(ku) = ku else {
        return Ok(Vec::new());
    };
    let ku = ku.value;
    let all = [
        (ku.digital_signature(), "digitalSignature"),
        (ku.non_repudiation(), "nonRepudiation"),
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
        (ku.key_cert_sign(), "keyCertSign"),
        (ku.crl_sign(), "cRLSign"),
        (ku.encipher_only(), "encipherOnly"),
        (ku.decipher_only(), "decipherOnly"),
    ];
    Ok(all
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| (*name).to_owned())
        .collect())
}

/// The extended key usages (empty when the extension is absent).
pub(crate) fn eku_of(cert: &X509Certificate<'_>) -> Result<Vec<String>, String> {
    let eku = cert
        .extended_key_usage()
        .map_err(|e| format!("bad extendedKeyUsage: {e}"))?;
    let Some(eku) = eku else {
        return Ok(Vec::new());
    };
    let e = eku.value;
    let mut names: Vec<String> = [
        (e.any, "anyExtendedKeyUsage"),
        (e.server_auth, "serverAuth"),
        (e.client_auth, "clientAuth"),
        (e.code_signing, "codeSigning"),
        (e.email_protection, "emailProtection"),
        (e.time_stamping, "timeStamping"),
        (e.ocsp_signing, "OCSPSigning"),
    ]
    .iter()
    .filter(|(set, _)| *set)
    .map(|(_, name)| (*name).to_owned())
    .collect();
    names.extend(e.other.iter().map(|oid| oid.to_id_string()));
    Ok(names)
}

/// Key type, size in bits and (for ECDSA) curve of the certificate's public key.
pub(crate) fn key_of(cert: &X509Certificate<'_>) -> (String, u32, Option<String>) {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => ("rsa".to_owned(), bit_len(rsa.modulus), None),
        Ok(PublicKey::EC(point)) => {
            let curve_oid = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            let (curve, bits) = match curve_oid.as_deref() {
                Some("1.2.840.10045.3.1.7") => ("P-256".to_owned(), 256),
                Some("1.3.132.0.34") => ("P-384".to_owned(), 384),
                Some("1.3.132.0.35") => ("P-521".to_owned(), 521),
                Some(other) => (other.to_owned(), to_u32(point.key_size())),
                None => ("unknown curve".to_owned(), to_u32(point.key_size())),
            };
            ("ecdsa".to_owned(), bits, Some(curve))
        }
        Ok(PublicKey::DSA(y)) => ("dsa".to_owned(), bit_len(y), None),
        _ => match alg.as_str() {
            "1.3.101.112" => ("ed25519".to_owned(), 256, None),
            "1.3.101.113" => ("ed448".to_owned(), 456, None),
            other => (format!("unknown ({other})"), 0, None),
        },
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The number of significant bits of a big-endian unsigned integer.
fn bit_len(bytes: &[u8]) -> u32 {
    match bytes.iter().position(|b| *b != 0) {
        None => 0,
        Some(i) => {
            let rest = to_u32(bytes.len() - i - 1).saturating_mul(8);
            rest + (8 - bytes[i].leading_zeros())
        }
    }
}

fn signature_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "ED25519",
        "1.3.101.113" => "ED448",
        other => return other.to_owned(),
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_len(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_len(&[0x01, 0x00]), 9);
        assert_eq!(bit_len(&[0x00]), 0);
        assert_eq!(bit_len(&[]), 0);
    }

    #[test]
    fn serials_drop_leading_zeros() {
        assert_eq!(serial_hex(&[0x00, 0x81, 0x02]), "8102");
        assert_eq!(serial_hex(&[0x00]), "00");
    }
}
