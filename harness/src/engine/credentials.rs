//! The deployment's certificates: what each server presents, what every client trusts, and
//! the faults staged on them.
//!
//! A run either generates its own CA and one certificate per server host, or reads them from
//! files (`[certificates]` in the scenario, e.g. the output of `vmsbench certs generate` or a
//! real deployment's). Faults (`[[fault]]`) replace one host's certificate with a broken one
//! issued by (or next to) the same CA, so that exactly that host's links fail, each with its
//! own failure category. A server whose private key cannot be read still starts: it has its
//! certificate, fails every handshake, and counts the failures as `key_unreadable`, as a
//! real server whose service account may not read its key would.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context};
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use simulators::pki::{
    CertificateAuthority, Flaw, HostIdentity, KeyType, ReloadableIdentity, Validity,
    DEFAULT_CA_NAME,
};
use simulators::transport::TlsSettings;

use crate::engine::scenario::{Certificates, FaultKind, Scenario};

/// How long generated certificates are valid.
pub(crate) const CERT_DAYS: u32 = 30;

/// What one server host presents.
enum Presented {
    /// A certificate and its key.
    Identity(HostIdentity),
    /// A certificate whose private key the server could not read (why, never the key).
    KeyUnreadable {
        identity: HostIdentity,
        reason: String,
    },
}

impl Presented {
    fn identity(&self) -> &HostIdentity {
        match self {
            Presented::Identity(i) | Presented::KeyUnreadable { identity: i, .. } => i,
        }
    }
}

/// One server host's certificate, for the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostCertificate {
    /// Host name.
    pub host: String,
    /// The leaf certificate's serial number, hex.
    pub serial: String,
    /// Its key (`rsa2048`, `ecdsa-p256`, …).
    pub key: String,
    /// Days until it expires (negative: expired).
    pub days_left: f64,
    /// The fault staged on it, if any.
    pub fault: Option<String>,
}

/// Where the run's certificates came from, for the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertificateSummary {
    /// `generated` or `files`.
    pub source: String,
    /// The directory they were read from (`files` only).
    pub dir: Option<String>,
    /// Every server host's certificate.
    pub hosts: Vec<HostCertificate>,
}

/// A host's certificate as it travels to the agent that runs the host's server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ShippedIdentity {
    pub host: String,
    pub chain_pem: String,
    /// The private key: travels only over the authenticated control channel; the agent
    /// neither writes it to disk nor logs it.
    pub key_pem: String,
    /// Why the server cannot read its key (the `key_unreadable` fault), if so.
    pub unreadable: Option<String>,
}

impl ShippedIdentity {
    /// `identity` of `host` for shipping; `unreadable` says why its server cannot read
    /// its key, if so.
    pub(crate) fn of(host: &str, identity: &HostIdentity, unreadable: Option<String>) -> Self {
        ShippedIdentity {
            host: host.to_owned(),
            chain_pem: identity.chain_pem(),
            key_pem: identity.key_pem(),
            unreadable,
        }
    }
}

/// What an agent needs of the deployment's certificates.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Shipped {
    /// The CA certificates clients trust, PEM.
    pub roots_pem: String,
    /// The certificates of the servers the agent runs.
    pub hosts: Vec<ShippedIdentity>,
}

/// Every certificate of a deployment and the CA clients trust.
pub(crate) struct Credentials {
    /// The CA that issued the hosts' certificates (generated runs only): it issues renewals
    /// and staged faults.
    ca: Option<CertificateAuthority>,
    /// What clients trust.
    roots: Vec<CertificateDer<'static>>,
    /// Names each healthy generated certificate carries besides its host name: the IP
    /// address its host listens on, when the run gives it one.
    sans: BTreeMap<String, Vec<String>>,
    hosts: BTreeMap<String, Presented>,
    faults: BTreeMap<String, FaultKind>,
    key: KeyType,
    dir: Option<PathBuf>,
    /// Key files staged for `key_unreadable`; removed with the credentials.
    _scratch: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("hosts", &self.hosts.keys().collect::<Vec<_>>())
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

/// The IP address each server host of `scenario` listens on, when `run --listen` gives it
/// a specific one, and the names and addresses `--host` gives it: its certificate names those
/// too, so that a client dialling the address or name (rather than the host name) can verify
/// it.
fn ip_sans(scenario: &Scenario) -> BTreeMap<String, Vec<String>> {
    if scenario.listen.is_default() {
        return BTreeMap::new();
    }
    scenario
        .server_hosts()
        .into_iter()
        .filter_map(|h| {
            let ip = scenario.listen.of(&h);
            let mut names: Vec<String> = (!ip.is_unspecified())
                .then(|| ip.to_string())
                .into_iter()
                .collect();
            for n in scenario.listen.sans.get(&h).into_iter().flatten() {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
            (!names.is_empty()).then_some((h, names))
        })
        .collect()
}

/// The extra names of `host`'s certificate.
fn sans_of<'a>(sans: &'a BTreeMap<String, Vec<String>>, host: &str) -> &'a [String] {
    sans.get(host).map_or(&[], Vec::as_slice)
}

impl Credentials {
    /// The certificates of every server host of `scenario`, generated or read from files,
    /// with its faults staged.
    pub(crate) fn for_scenario(scenario: &Scenario) -> anyhow::Result<Credentials> {
        let hosts = scenario.server_hosts();
        let faults: BTreeMap<String, FaultKind> = scenario
            .faults
            .iter()
            .map(|f| (f.host.clone(), f.kind))
            .collect();
        let mut creds = match &scenario.certificates {
            Certificates::Generated => {
                Self::generate(&hosts, scenario.key, &faults, &ip_sans(scenario))?
            }
            Certificates::Files { dir, ca } => Self::from_files(&hosts, dir, ca)?,
        };
        creds.faults = faults;
        let unreadable: Vec<String> = creds
            .faults
            .iter()
            .filter(|(_, k)| **k == FaultKind::KeyUnreadable)
            .map(|(h, _)| h.clone())
            .collect();
        if !unreadable.is_empty() {
            let scratch = tempfile::Builder::new()
                .prefix("vmsbench-keys-")
                .tempdir()
                .context("creating a directory for the staged key files")?;
            for host in unreadable {
                let Some(presented) = creds.hosts.remove(&host) else {
                    continue;
                };
                let identity = presented.identity().clone();
                let path = scratch.path().join(format!("{host}.key.pem"));
                write_unreadable_key(&path, &identity)?;
                let presented = match read_key(&path) {
                    Ok(_) => bail!(
                        "staging key_unreadable on {host}: {} is still readable",
                        path.display()
                    ),
                    Err(reason) => Presented::KeyUnreadable { identity, reason },
                };
                creds.hosts.insert(host, presented);
            }
            creds._scratch = Some(scratch);
        }
        Ok(creds)
    }

    fn generate(
        hosts: &[String],
        key: KeyType,
        faults: &BTreeMap<String, FaultKind>,
        sans: &BTreeMap<String, Vec<String>>,
    ) -> anyhow::Result<Credentials> {
        let validity = Validity::days_from_now(CERT_DAYS);
        let ca = CertificateAuthority::generate(DEFAULT_CA_NAME, key, validity)
            .context("generating the deployment's CA")?;
        let mut map = BTreeMap::new();
        for host in hosts {
            if map.contains_key(host) {
                continue;
            }
            let identity = match faults.get(host) {
                Some(kind) => issue_faulty(&ca, host, key, *kind)?,
                None => ca.issue(host, sans_of(sans, host), key, validity)?,
            };
            map.insert(host.clone(), Presented::Identity(identity));
        }
        Ok(Credentials {
            roots: vec![ca.root_cert_der().clone()],
            ca: Some(ca),
            sans: sans.clone(),
            hosts: map,
            faults: BTreeMap::new(),
            key,
            dir: None,
            _scratch: None,
        })
    }

    fn from_files(hosts: &[String], dir: &Path, ca: &Path) -> anyhow::Result<Credentials> {
        let ca_pem =
            fs::read(ca).with_context(|| format!("reading the CA certificate {}", ca.display()))?;
        let roots: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&ca_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow!("{}: not a PEM certificate file: {e}", ca.display()))?;
        if roots.is_empty() {
            bail!(
                "{} holds no certificate; name the CA certificate clients should trust",
                ca.display()
            );
        }
        let mut map = BTreeMap::new();
        let mut key = None;
        for host in hosts {
            let cert_path = [
                dir.join(format!("{host}.chain.pem")),
                dir.join(format!("{host}.pem")),
            ]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| {
                anyhow!(
                    "no certificate for {host} in {}: expected {host}.chain.pem or {host}.pem \
                     (`vmsbench certs generate --hosts {host} --out {}` writes them)",
                    dir.display(),
                    dir.display()
                )
            })?;
            let chain = fs::read_to_string(&cert_path)
                .with_context(|| format!("reading {}", cert_path.display()))?;
            let key_path = dir.join(format!("{host}.key.pem"));
            // A key that cannot be read stops the run here: the files are the user's,
            // and a run with a server silently missing would measure something else.
            // (The `key_unreadable` fault stages that case on purpose.)
            let key_pem = read_key(&key_path).map_err(|reason| anyhow!("{host}: {reason}"))?;
            let identity = HostIdentity::from_pem(host, &chain, &key_pem)
                .with_context(|| format!("loading {} and its key", cert_path.display()))?;
            let presented = Presented::Identity(identity);
            key.get_or_insert(presented.identity().key_type());
            map.insert(host.clone(), presented);
        }
        Ok(Credentials {
            ca: None,
            roots,
            sans: BTreeMap::new(),
            hosts: map,
            faults: BTreeMap::new(),
            key: key.unwrap_or_default(),
            dir: Some(dir.to_path_buf()),
            _scratch: None,
        })
    }

    /// A client configuration trusting the deployment's CA and checking host names.
    /// The certificates clients trust, as a PEM CA file for real clients (`openssl
    /// s_client -CAfile`, another host's agent).
    pub(crate) fn trust_pem(&self) -> String {
        simulators::pki::certificates_pem(&self.roots)
    }

    pub(crate) fn client_config(&self, tls: &TlsSettings) -> anyhow::Result<Arc<ClientConfig>> {
        Ok(simulators::verify::client_config(self.roots.clone(), tls)?)
    }

    fn presented(&self, host: &str) -> anyhow::Result<&Presented> {
        self.hosts.get(host).ok_or_else(|| {
            anyhow!(
                "no certificate for {host}; known hosts: {}",
                self.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// The server configuration of `host`: it accepts what real clients commonly offer,
    /// the pinned settings `tls` first ([`TlsSettings::accepted_by_servers`]), so that a
    /// client pinning `tls` negotiates exactly that.
    pub(crate) fn server_config(
        &self,
        host: &str,
        tls: &TlsSettings,
    ) -> anyhow::Result<Arc<ServerConfig>> {
        let accepted = tls.accepted_by_servers();
        Ok(match self.presented(host)? {
            Presented::Identity(i) => i.server_config(&accepted)?,
            Presented::KeyUnreadable { identity, reason } => {
                identity.server_config_without_key(&accepted, reason)?
            }
        })
    }

    /// The server configuration of `host` through a [`ReloadableIdentity`], for hosts whose
    /// certificate expires or is renewed during the run; it accepts what
    /// [`Credentials::server_config`] accepts.
    pub(crate) fn server_config_reloadable(
        &self,
        host: &str,
        tls: &TlsSettings,
    ) -> anyhow::Result<(Arc<ServerConfig>, Arc<ReloadableIdentity>)> {
        match self.presented(host)? {
            Presented::Identity(i) => Ok(i.server_config_reloadable(&tls.accepted_by_servers())?),
            Presented::KeyUnreadable { reason, .. } => {
                bail!("{host} cannot present a certificate: {reason}")
            }
        }
    }

    fn ca(&self, what: &str) -> anyhow::Result<&CertificateAuthority> {
        self.ca.as_ref().ok_or_else(|| {
            anyhow!("{what} needs certificates vmsbench issues, and these came from files")
        })
    }

    /// A newly issued certificate for `host` (new key and serial number), as a renewal.
    pub(crate) fn renewal(&self, host: &str) -> anyhow::Result<HostIdentity> {
        let ca = self.ca("renewing a certificate")?;
        let validity = Validity::days_from_now(CERT_DAYS);
        Ok(ca.issue(host, sans_of(&self.sans, host), self.key, validity)?)
    }

    /// `host`'s certificate as it is once its not-after date has passed: the same name and
    /// key type, valid until two seconds ago.
    pub(crate) fn expired(&self, host: &str) -> anyhow::Result<HostIdentity> {
        let ca = self.ca("expiring a certificate")?;
        let now = SystemTime::now();
        let validity = Validity {
            not_before: now - Duration::from_secs(u64::from(CERT_DAYS) * 86_400),
            not_after: now - Duration::from_secs(2),
        };
        Ok(ca.issue(host, sans_of(&self.sans, host), self.key, validity)?)
    }

    /// What an agent running the servers of `hosts` needs: the roots, their certificates
    /// and keys.
    pub(crate) fn shipped<'h>(&self, hosts: impl IntoIterator<Item = &'h str>) -> Shipped {
        let hosts = hosts
            .into_iter()
            .filter_map(|h| self.hosts.get(h).map(|p| (h, p)))
            .map(|(host, presented)| {
                let unreadable = match presented {
                    Presented::KeyUnreadable { reason, .. } => Some(reason.clone()),
                    Presented::Identity(_) => None,
                };
                ShippedIdentity::of(host, presented.identity(), unreadable)
            })
            .collect();
        Shipped {
            roots_pem: self.trust_pem(),
            hosts,
        }
    }

    /// The credentials of an agent, from what the coordinator shipped: it presents the
    /// shipped certificates and trusts the shipped roots; it issues nothing itself.
    pub(crate) fn from_shipped(shipped: &Shipped) -> anyhow::Result<Credentials> {
        let roots: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(shipped.roots_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow!("the shipped roots are not PEM certificates: {e}"))?;
        let mut hosts = BTreeMap::new();
        let mut key = None;
        for s in &shipped.hosts {
            let identity = HostIdentity::from_pem(&s.host, &s.chain_pem, &s.key_pem)
                .with_context(|| format!("loading the certificate of {}", s.host))?;
            key.get_or_insert(identity.key_type());
            let presented = match &s.unreadable {
                Some(reason) => Presented::KeyUnreadable {
                    identity,
                    reason: reason.clone(),
                },
                None => Presented::Identity(identity),
            };
            hosts.insert(s.host.clone(), presented);
        }
        Ok(Credentials {
            ca: None,
            roots,
            sans: BTreeMap::new(),
            hosts,
            faults: BTreeMap::new(),
            key: key.unwrap_or_default(),
            dir: None,
            _scratch: None,
        })
    }

    /// Where the certificates came from and what each host presents, for the report.
    pub(crate) fn summary(&self) -> CertificateSummary {
        let now = SystemTime::now();
        CertificateSummary {
            source: if self.ca.is_some() {
                "generated"
            } else {
                "files"
            }
            .into(),
            dir: self.dir.as_ref().map(|d| d.display().to_string()),
            hosts: self
                .hosts
                .iter()
                .map(|(host, p)| {
                    let i = p.identity();
                    let left = match i.validity().not_after.duration_since(now) {
                        Ok(d) => d.as_secs_f64(),
                        Err(e) => -e.duration().as_secs_f64(),
                    };
                    HostCertificate {
                        host: host.clone(),
                        serial: i.serial_hex(),
                        key: if i.key_type().is_rsa() {
                            format!("rsa{}", i.key_bits())
                        } else {
                            i.key_type().name().to_owned()
                        },
                        days_left: (left / 86_400.0 * 10.0).round() / 10.0,
                        fault: self.faults.get(host).map(|k| k.as_str().to_owned()),
                    }
                })
                .collect(),
        }
    }
}

/// `host`'s certificate with fault `kind`, from `ca` (or, for `untrusted_ca`, from another
/// CA of the same name).
fn issue_faulty(
    ca: &CertificateAuthority,
    host: &str,
    key: KeyType,
    kind: FaultKind,
) -> anyhow::Result<HostIdentity> {
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let valid = Validity::days_from_now(CERT_DAYS);
    let identity = match kind {
        FaultKind::Expired => ca.issue(
            host,
            &[],
            key,
            Validity {
                not_before: now - day * (CERT_DAYS + 1),
                not_after: now - day,
            },
        )?,
        FaultKind::NotYetValid => ca.issue(
            host,
            &[],
            key,
            Validity {
                not_before: now + day,
                not_after: now + day * (CERT_DAYS + 1),
            },
        )?,
        FaultKind::WrongHost => {
            // The short name only: clients dial the full one.
            let short = host.split('.').next().unwrap_or(host);
            let name = if short == host { "other-host" } else { short };
            ca.issue(name, &[], key, valid)?
        }
        FaultKind::UntrustedCa => {
            let other = CertificateAuthority::generate(DEFAULT_CA_NAME, key, valid)?;
            other.issue(host, &[], key, valid)?
        }
        FaultKind::MissingIntermediate => {
            let intermediate =
                ca.issue_intermediate(&format!("{DEFAULT_CA_NAME} intermediate"), key, valid)?;
            intermediate.issue(host, &[], key, valid)?.leaf_only()
        }
        FaultKind::NoServerAuthEku => ca.issue_flawed(host, key, valid, Flaw::NoServerAuthEku)?,
        FaultKind::Rsa1024 => ca.issue_flawed(host, key, valid, Flaw::Rsa1024)?,
        FaultKind::KeyUnreadable | FaultKind::Tls11Client => ca.issue(host, &[], key, valid)?,
    };
    Ok(identity)
}

/// Writes `identity`'s key to `path` with mode 000: a key file nobody may read.
fn write_unreadable_key(path: &Path, identity: &HostIdentity) -> anyhow::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(identity.key_pem().as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Reads a server's private key file as the account that runs the server would: a file
/// whose owner may not read it is unreadable even to a process running as root (which the
/// kernel would let through), because a service account is not root. The error says why,
/// and never contains key material.
fn read_key(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let denied = || {
        format!(
            "the private key {shown} cannot be read: permission denied; the account that runs \
             the server must be able to read it (mode 600, owned by that account)"
        )
    };
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!(
            "the private key {shown} is missing; install the key issued with the certificate"
        ),
        io::ErrorKind::PermissionDenied => denied(),
        _ => format!("the private key {shown} cannot be read: {e}"),
    })?;
    if meta.permissions().mode() & 0o400 == 0 {
        return Err(denied());
    }
    fs::read_to_string(path).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => denied(),
        _ => format!("the private key {shown} cannot be read: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_without_owner_read_is_unreadable_whoever_runs_the_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.pem");
        fs::write(&path, "not a key").expect("write");
        assert_eq!(read_key(&path).as_deref(), Ok("not a key"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).expect("chmod");
        let err = read_key(&path).expect_err("mode 000");
        assert!(err.contains("permission denied"), "{err}");
        assert!(!err.contains("not a key"), "{err}");
        let missing = read_key(&dir.path().join("absent.pem")).expect_err("missing");
        assert!(missing.contains("is missing"), "{missing}");
    }

    #[test]
    fn an_agent_gets_the_roots_and_only_the_certificates_of_the_servers_it_runs() {
        let scenario = crate::engine::scenario::file::load_preset("small").expect("preset");
        let creds = Credentials::for_scenario(&scenario).expect("credentials");
        let shipped = creds.shipped(["recorder-1.vms.test", "no-such-host"]);
        let hosts: Vec<&str> = shipped.hosts.iter().map(|h| h.host.as_str()).collect();
        assert_eq!(hosts, ["recorder-1.vms.test"]);
        let agent = Credentials::from_shipped(&shipped).expect("loads");
        let tls = TlsSettings::default();
        assert!(agent.server_config("recorder-1.vms.test", &tls).is_ok());
        let e = agent
            .server_config("mgmt.vms.test", &tls)
            .expect_err("not shipped");
        assert!(
            e.to_string().contains("no certificate for mgmt.vms.test"),
            "{e}"
        );
        assert_eq!(agent.trust_pem(), creds.trust_pem());
        // An agent issues nothing: renewals and expiries come from the coordinator's CA.
        assert!(agent.renewal("recorder-1.vms.test").is_err());
    }

    #[test]
    fn a_certificate_names_the_listen_address_and_what_host_gives_it() {
        let mut scenario = crate::engine::scenario::file::load_preset("small").expect("preset");
        assert!(
            ip_sans(&scenario).is_empty(),
            "127.0.0.1 everywhere: no extra names"
        );
        scenario.listen.default = "0.0.0.0".parse().expect("an address");
        scenario.listen.hosts.insert(
            "recorder-1.vms.test".into(),
            "10.0.0.2".parse().expect("an address"),
        );
        scenario.listen.sans.insert(
            "mgmt.vms.test".into(),
            vec!["coordinator.vmsbench".into(), "10.0.0.9".into()],
        );
        let sans = ip_sans(&scenario);
        assert_eq!(sans["recorder-1.vms.test"], ["10.0.0.2"]);
        assert_eq!(sans["mgmt.vms.test"], ["coordinator.vmsbench", "10.0.0.9"]);
        // 0.0.0.0 is no address to certify.
        assert!(!sans.contains_key("event.vms.test"), "{sans:?}");
    }
}
