//! `[[fault]]`: certificate faults staged on servers, at most one per host.

use std::ops::Range;

use toml::Spanned;

use super::super::raw::RawFault;
use super::{Resolver, Result};
use crate::engine::scenario::{Fault, FaultKind};

impl Resolver<'_> {
    /// The staged faults. `server_hosts` are the hosts a fault may be staged on;
    /// `files_span` is where `[certificates]` is, if the certificates come from files
    /// (then only the faults that need no certificate issued by vmsbench are allowed).
    pub(super) fn faults(
        &self,
        raw: &[Spanned<RawFault>],
        server_hosts: &[String],
        files_span: Option<&Range<usize>>,
    ) -> Result<Vec<Fault>> {
        let mut faults: Vec<Fault> = Vec::new();
        for f in raw {
            let f = f.get_ref();
            let host = f.host.get_ref();
            if !server_hosts.contains(host) {
                return Err(self.err(
                    f.host.span(),
                    format!(
                        "unknown server {host:?}; a fault is staged on one of: {}",
                        server_hosts.join(", ")
                    ),
                ));
            }
            let kind: FaultKind = f
                .kind
                .get_ref()
                .parse()
                .map_err(|why: String| self.err(f.kind.span(), why))?;
            if faults.iter().any(|g| &g.host == host) {
                return Err(self.err(
                    f.host.span(),
                    format!("{host} already has a fault; stage one fault per host"),
                ));
            }
            if let (Some(span), true) = (files_span, kind.needs_issuing()) {
                let (line, _) = self.src.position(span.start);
                return Err(self.err(
                    f.kind.span(),
                    format!(
                        "fault {} needs a certificate vmsbench issues itself, and the certificates come from files ([certificates] at line {line}); with files, only key_unreadable and tls11_client can be staged",
                        kind.as_str()
                    ),
                ));
            }
            faults.push(Fault {
                host: host.clone(),
                kind,
            });
        }
        Ok(faults)
    }
}
