//! `[[failover]]`, `[[recorder]]`, `[event_server]` and `[mobile_server]`: the servers
//! besides the management server, each claiming its host name.

use simulators::video::Profile;
use toml::Spanned;

use super::super::raw::{RawEventServer, RawMobileServer, RawRecorder, RawScenario};
use super::{default_transcode_profile, to_u32, Resolver, Result, MAX_CAMERAS, MAX_GROUP};
use crate::engine::scenario::{
    CameraGroup, EventServerSpec, Management, MobileMode, MobileServerSpec, RecorderSpec,
};

/// The servers of a scenario besides the management server.
pub(super) struct Servers {
    /// Hosts of the failover recording servers, in file order.
    pub(super) failovers: Vec<String>,
    /// The recording servers, at least one.
    pub(super) recorders: Vec<RecorderSpec>,
    pub(super) event_server: Option<EventServerSpec>,
    pub(super) mobile_server: Option<MobileServerSpec>,
}

impl Servers {
    /// Every server's host, the management server's first: the hosts a certificate event
    /// or a fault may name.
    pub(super) fn hosts(&self, management: &Management) -> Vec<String> {
        std::iter::once(management.host.clone())
            .chain(self.recorders.iter().map(|r| r.host.clone()))
            .chain(self.failovers.iter().cloned())
            .chain(self.event_server.iter().map(|e| e.host.clone()))
            .chain(self.mobile_server.iter().map(|m| m.host.clone()))
            .collect()
    }
}

impl Resolver<'_> {
    /// The servers. Failovers first, so that recorders can refer to them; at least one
    /// recorder.
    pub(super) fn servers(&mut self, raw: &RawScenario) -> Result<Servers> {
        let mut failovers = Vec::new();
        for f in &raw.failover.0 {
            failovers.push(self.host(&f.get_ref().host, "a failover recording server")?);
        }
        let mut recorders = Vec::new();
        for rec in &raw.recorder.0 {
            recorders.push(self.recorder(rec.get_ref(), &failovers)?);
        }
        if recorders.is_empty() {
            return Err(self.src.error_at_top(
                "a scenario needs at least one recording server: add [[recorder]] with host = \"recorder-1.vms.test\" and cameras = [{ profile = \"1080p\", count = 32 }]",
            ));
        }
        let event_server = match &raw.event_server {
            Some(e) => Some(self.event_server(e.get_ref())?),
            None => None,
        };
        let mobile_server = match &raw.mobile_server {
            Some(m) => Some(self.mobile_server(m.get_ref())?),
            None => None,
        };
        Ok(Servers {
            failovers,
            recorders,
            event_server,
            mobile_server,
        })
    }

    /// One `[[recorder]]`: its host, its failover (declared before it) and its camera groups.
    fn recorder(&mut self, raw: &RawRecorder, failovers: &[String]) -> Result<RecorderSpec> {
        let host = self.host(&raw.host, "a recording server")?;
        let failover = match &raw.failover {
            None => None,
            Some(f) => {
                let name = f.get_ref();
                if !failovers.contains(name) {
                    let declared = if failovers.is_empty() {
                        "none is declared".to_owned()
                    } else {
                        format!("declared failovers: {}", failovers.join(", "))
                    };
                    return Err(self.err(
                        f.span(),
                        format!("failover {name:?} is not declared; add [[failover]] with host = {name:?} ({declared})"),
                    ));
                }
                Some(name.clone())
            }
        };
        let mut cameras = Vec::new();
        for g in raw.cameras.get_ref() {
            let g = g.get_ref();
            let profile = match &g.profile {
                Some(p) => self.profile(p, "custom")?,
                None => Profile::default_1080p(),
            };
            let count = self.count_within(&g.count, "count", 1, MAX_GROUP, "")?;
            cameras.push(CameraGroup {
                profile,
                count: to_u32(count),
            });
        }
        if cameras.is_empty() {
            return Err(self.err(
                raw.cameras.span(),
                "a recording server needs cameras: e.g. cameras = [{ profile = \"1080p\", count = 32 }]",
            ));
        }
        let total: u64 = cameras.iter().map(|g| u64::from(g.count)).sum();
        if total > MAX_CAMERAS {
            return Err(self.err(
                raw.cameras.span(),
                format!("a recording server has at most {MAX_CAMERAS} cameras, and these groups add up to {total}"),
            ));
        }
        Ok(RecorderSpec {
            host,
            cameras,
            failover,
        })
    }

    /// `[event_server]`: its host, and how many events a second of what size it sends
    /// (default 2 of 400 bytes).
    fn event_server(&mut self, raw: &RawEventServer) -> Result<EventServerSpec> {
        Ok(EventServerSpec {
            host: self.host(&raw.host, "the event server")?,
            events_per_s: match &raw.events_per_s {
                Some(q) => to_u32(self.count_within(q, "events_per_s", 1, MAX_GROUP, "")?),
                None => 2,
            },
            event_bytes: match &raw.event_size {
                Some(q) => self.payload_size(q, "event_size")?,
                None => 400,
            },
        })
    }

    /// `[mobile_server]`: its host, its mode, and the profile of the stream it transcodes
    /// to (used in transcoded mode).
    fn mobile_server(&mut self, raw: &RawMobileServer) -> Result<MobileServerSpec> {
        let host = self.host(&raw.host, "the mobile server")?;
        let mode = self.mobile_mode(raw.mode.as_ref())?;
        let transcode_profile = match &raw.transcode_profile {
            Some(p) => self.profile(p, "transcoded")?,
            None => default_transcode_profile(),
        };
        Ok(MobileServerSpec {
            host,
            mode,
            transcode_profile,
        })
    }

    /// The mobile server's `mode`: direct (the default) or transcoded.
    fn mobile_mode(&self, mode: Option<&Spanned<String>>) -> Result<MobileMode> {
        let Some(s) = mode else {
            return Ok(MobileMode::Direct);
        };
        match s.get_ref().as_str() {
            "direct" => Ok(MobileMode::Direct),
            "transcoded" => Ok(MobileMode::Transcoded),
            other => Err(self.err(
                s.span(),
                format!("unknown mobile server mode {other:?}; valid modes are: direct (the camera stream passed through), transcoded (re-encoded to JPEG frames)"),
            )),
        }
    }
}
