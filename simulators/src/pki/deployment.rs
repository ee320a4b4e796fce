//! The deployment's PKI: a CA plus one identity per host.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};

use crate::transport::TlsSettings;

use super::authority::CertificateAuthority;
use super::identity::HostIdentity;
use super::reloadable::ReloadableIdentity;
use super::{KeyType, PkiError, Validity, DEFAULT_CA_NAME};

/// A CA plus one identity per host, all with the same key type.
#[derive(Debug)]
pub struct Pki {
    /// The certificate authority that issued every host's certificate.
    pub ca: CertificateAuthority,
    hosts: BTreeMap<String, HostIdentity>,
}

impl Pki {
    /// Generates a CA named [`DEFAULT_CA_NAME`] and a certificate for each of `hosts`
    /// (duplicates issued once), all with `key` keys and valid from an hour ago until
    /// `days` days from now.
    pub fn generate(hosts: &[&str], key: KeyType, days: u32) -> Result<Self, PkiError> {
        let validity = Validity::days_from_now(days);
        let ca = CertificateAuthority::generate(DEFAULT_CA_NAME, key, validity)?;
        let mut map = BTreeMap::new();
        for host in hosts {
            if !map.contains_key(*host) {
                let identity = ca.issue(host, &[], key, validity)?;
                map.insert((*host).to_owned(), identity);
            }
        }
        Ok(Pki { ca, hosts: map })
    }

    /// The identity issued for `name`, if any.
    pub fn host(&self, name: &str) -> Option<&HostIdentity> {
        self.hosts.get(name)
    }

    /// Every identity, by host name.
    pub fn hosts(&self) -> impl Iterator<Item = &HostIdentity> {
        self.hosts.values()
    }

    /// A client configuration trusting only this PKI's CA; see
    /// [`CertificateAuthority::client_config`].
    pub fn client_config(&self, tls: &TlsSettings) -> Result<Arc<ClientConfig>, PkiError> {
        self.ca.client_config(tls)
    }

    /// A server configuration presenting `host`'s identity, or [`PkiError::UnknownHost`] if
    /// no certificate was issued for it.
    pub fn server_config(
        &self,
        host: &str,
        tls: &TlsSettings,
    ) -> Result<Arc<ServerConfig>, PkiError> {
        match self.hosts.get(host) {
            Some(identity) => identity.server_config(tls),
            None => Err(PkiError::UnknownHost {
                host: host.to_owned(),
                known: self.hosts.keys().cloned().collect(),
            }),
        }
    }
}

impl Pki {
    /// A server configuration presenting `host`'s identity through a
    /// [`ReloadableIdentity`] (see [`HostIdentity::server_config_reloadable`]), or
    /// [`PkiError::UnknownHost`] if no certificate was issued for it.
    pub fn server_config_reloadable(
        &self,
        host: &str,
        tls: &TlsSettings,
    ) -> Result<(Arc<ServerConfig>, Arc<ReloadableIdentity>), PkiError> {
        match self.hosts.get(host) {
            Some(identity) => identity.server_config_reloadable(tls),
            None => Err(PkiError::UnknownHost {
                host: host.to_owned(),
                known: self.hosts.keys().cloned().collect(),
            }),
        }
    }
}
