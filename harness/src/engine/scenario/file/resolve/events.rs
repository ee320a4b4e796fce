//! `[[event]]`: what happens during the measured window, and when.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::super::raw::RawEvent;
use super::servers::Servers;
use super::{host_list, Resolver, Result, MAX_EVENT_AT};
use crate::engine::scenario::{EventAction, ScheduledEvent};

impl Resolver<'_> {
    /// The scheduled events, in time order. `server_hosts` are the hosts whose
    /// certificates an event may expire or renew; `files_span` is where `[certificates]`
    /// is, if the certificates come from files (then certificate events are refused).
    pub(super) fn events(
        &self,
        raw: &[Spanned<RawEvent>],
        servers: &Servers,
        server_hosts: &[String],
        files_span: Option<&Range<usize>>,
    ) -> Result<Vec<ScheduledEvent>> {
        let mut events = Vec::new();
        let mut stopped: HashMap<String, Range<usize>> = HashMap::new();
        for e in raw {
            let e = e.get_ref();
            let at = self.duration(&e.at, "at")?;
            if at.is_zero() {
                return Err(self.err(
                    e.at.span(),
                    "at must be after the measured window opens (more than 0s), e.g. at = \"3s\"",
                ));
            }
            let at = self.duration_within(&e.at, "at", at, Duration::ZERO, MAX_EVENT_AT)?;
            let action = self.event_action(e, servers, server_hosts, &mut stopped)?;
            if let (
                Some(span),
                EventAction::ExpireCertificate { .. } | EventAction::RenewCertificate { .. },
            ) = (files_span, &action)
            {
                let (line, _) = self.src.position(span.start);
                return Err(self.err(
                    e.action.span(),
                    format!("certificate events need certificates vmsbench issues itself, and the certificates come from files ([certificates] at line {line}); remove one or the other"),
                ));
            }
            events.push(ScheduledEvent { at, action });
        }
        events.sort_by_key(|e| e.at);
        Ok(events)
    }

    /// What an event does to which host. `stopped` holds the recorders stopped by earlier
    /// events, and where.
    fn event_action(
        &self,
        e: &RawEvent,
        servers: &Servers,
        server_hosts: &[String],
        stopped: &mut HashMap<String, Range<usize>>,
    ) -> Result<EventAction> {
        match e.action.get_ref().as_str() {
            "stop_recorder" => self.stop_recorder(&e.host, servers, stopped),
            "expire_certificate" | "renew_certificate" => {
                let host = e.host.get_ref();
                if !server_hosts.contains(host) {
                    return Err(self.err(
                        e.host.span(),
                        format!(
                            "unknown server {host:?}; a certificate belongs to one of: {}",
                            server_hosts.join(", ")
                        ),
                    ));
                }
                if e.action.get_ref() == "expire_certificate" {
                    Ok(EventAction::ExpireCertificate { host: host.clone() })
                } else {
                    Ok(EventAction::RenewCertificate { host: host.clone() })
                }
            }
            other => Err(self.err(
                e.action.span(),
                format!("unknown action {other:?}; valid actions are: stop_recorder (a recording server stops; its clients move to its failover), expire_certificate (a server's certificate expires: new handshakes fail, established connections go on), renew_certificate (a server presents a newly issued certificate to new connections, without a restart)"),
            )),
        }
    }

    /// `stop_recorder`: `host` must be a `[[recorder]]` (not a failover) that no earlier
    /// event stops.
    fn stop_recorder(
        &self,
        host: &Spanned<String>,
        servers: &Servers,
        stopped: &mut HashMap<String, Range<usize>>,
    ) -> Result<EventAction> {
        let span = host.span();
        let host = host.get_ref();
        if !servers.recorders.iter().any(|rec| &rec.host == host) {
            let what = if servers.failovers.contains(host) {
                format!("{host:?} is a failover server; stop_recorder stops a [[recorder]]")
            } else {
                format!("unknown recording server {host:?}")
            };
            return Err(self.err(
                span,
                format!("{what}; recorders are: {}", host_list(&servers.recorders)),
            ));
        }
        if let Some(first) = stopped.get(host) {
            let (line, _) = self.src.position(first.start);
            return Err(self.err(
                span,
                format!(
                    "{host} is already stopped by the event at line {line}; a recorder stops once"
                ),
            ));
        }
        stopped.insert(host.clone(), span);
        Ok(EventAction::StopRecorder { host: host.clone() })
    }
}
