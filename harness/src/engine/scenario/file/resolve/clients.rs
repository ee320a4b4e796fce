//! `[[viewer]]`, `[[integration]]`, `[[phone]]` and `[[collector]]`: the client groups,
//! each named uniquely within its kind, and (collectors aside) on one recording server.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use simulators::role::wan::WanProfile;

use super::super::raw::{
    BitrateKind, CountKind, DurationKind, Quantity, RawCollector, RawIntegration, RawPhone,
    RawScenario, RawViewer, RawWan, ShareKind,
};
use super::servers::Servers;
use super::{
    host_list, to_u32, Resolver, Result, MAX_GROUP, MAX_PHONE_CAMERAS, MAX_VIEW, MAX_WAN_DELAY,
    MAX_WAN_LOSS,
};
use crate::engine::scenario::{
    CollectorGroup, IntegrationGroup, PhoneGroup, RecorderSpec, ViewMode, ViewerGroup,
};
use crate::units;

/// The client groups of a scenario, by kind.
pub(super) struct Clients {
    pub(super) viewers: Vec<ViewerGroup>,
    pub(super) integrations: Vec<IntegrationGroup>,
    pub(super) phones: Vec<PhoneGroup>,
    pub(super) collectors: Vec<CollectorGroup>,
}

impl Resolver<'_> {
    /// The client groups, kind by kind: viewers, integrations, phones, collectors.
    pub(super) fn clients(&self, raw: &RawScenario, servers: &Servers) -> Result<Clients> {
        let mut names = GroupNames::default();
        let mut viewers = Vec::new();
        for (i, v) in raw.viewer.0.iter().enumerate() {
            viewers.push(self.viewer(&mut names, i, v, servers)?);
        }
        let mut integrations = Vec::new();
        for (i, g) in raw.integration.0.iter().enumerate() {
            integrations.push(self.integration(&mut names, i, g, servers)?);
        }
        let mut phones = Vec::new();
        for (i, p) in raw.phone.0.iter().enumerate() {
            phones.push(self.phone(&mut names, i, p, servers)?);
        }
        let mut collectors = Vec::new();
        for (i, c) in raw.collector.0.iter().enumerate() {
            collectors.push(self.collector(&mut names, i, c)?);
        }
        Ok(Clients {
            viewers,
            integrations,
            phones,
            collectors,
        })
    }

    /// The `index`th `[[viewer]]`: clients showing `view` cameras of a recording server at
    /// once, live or played back.
    fn viewer(
        &self,
        names: &mut GroupNames,
        index: usize,
        table: &Spanned<RawViewer>,
        servers: &Servers,
    ) -> Result<ViewerGroup> {
        let span = table.span();
        let v = table.get_ref();
        let name = names.claim(self, "viewer", index, v.name.as_ref(), &span)?;
        let recorder = self.recorder_ref(
            v.recorder.as_ref(),
            span,
            &servers.recorders,
            &servers.failovers,
        )?;
        let cameras = camera_count(&servers.recorders, &recorder);
        let view = self.count_within(
            &v.view,
            "view",
            1,
            MAX_VIEW,
            " cameras (1, 4, 9 and 16 are the usual layouts)",
        )?;
        if view > cameras {
            return Err(self.err(
                v.view.span(),
                format!("view {view} is more than the {cameras} cameras of {recorder}"),
            ));
        }
        let mode = self.view_mode(v.playback.as_ref())?;
        Ok(ViewerGroup {
            name,
            count: to_u32(self.count_within(&v.count, "count", 0, MAX_GROUP, "")?),
            recorder,
            view: to_u32(view),
            mode,
            wan: self.wan_table(v.wan.as_ref())?,
        })
    }

    /// A viewer's mode: live, unless it names a `playback` speed (1–8).
    fn view_mode(&self, playback: Option<&Spanned<Quantity<CountKind>>>) -> Result<ViewMode> {
        let Some(q) = playback else {
            return Ok(ViewMode::Live);
        };
        let speed = self.count_within(
            q,
            "playback speed",
            1,
            8,
            " (at 4 and above only I-frames are sent; leave playback out for live video)",
        )?;
        Ok(ViewMode::Playback(u8::try_from(speed).unwrap_or(8)))
    }

    /// The `index`th `[[integration]]`: SDK clients each pulling `streams` cameras of a
    /// recording server.
    fn integration(
        &self,
        names: &mut GroupNames,
        index: usize,
        table: &Spanned<RawIntegration>,
        servers: &Servers,
    ) -> Result<IntegrationGroup> {
        let span = table.span();
        let g = table.get_ref();
        let name = names.claim(self, "integration", index, g.name.as_ref(), &span)?;
        let recorder = self.recorder_ref(
            g.recorder.as_ref(),
            span,
            &servers.recorders,
            &servers.failovers,
        )?;
        let cameras = camera_count(&servers.recorders, &recorder);
        let streams = self.count_within(&g.streams, "streams", 1, MAX_GROUP, "")?;
        if streams > cameras {
            return Err(self.err(
                g.streams.span(),
                format!("streams {streams} is more than the {cameras} cameras of {recorder}"),
            ));
        }
        Ok(IntegrationGroup {
            name,
            count: to_u32(self.count_within(&g.count, "count", 0, MAX_GROUP, "")?),
            recorder,
            streams: to_u32(streams),
            tls_capable: g.tls.unwrap_or(true),
            wan: self.wan_table(g.wan.as_ref())?,
        })
    }

    /// The `index`th `[[phone]]`: phones watching `cameras_each` cameras of a recording
    /// server through the mobile server, which must exist.
    fn phone(
        &self,
        names: &mut GroupNames,
        index: usize,
        table: &Spanned<RawPhone>,
        servers: &Servers,
    ) -> Result<PhoneGroup> {
        let span = table.span();
        let p = table.get_ref();
        if servers.mobile_server.is_none() {
            return Err(self.err(
                span,
                "phones connect through the mobile server, and there is none: add [mobile_server] with host = \"mobile.vms.test\"",
            ));
        }
        let name = names.claim(self, "phone", index, p.name.as_ref(), &span)?;
        let recorder = self.recorder_ref(
            p.recorder.as_ref(),
            span,
            &servers.recorders,
            &servers.failovers,
        )?;
        let cameras = camera_count(&servers.recorders, &recorder);
        let cameras_each = match &p.cameras_each {
            Some(q) => {
                let n = self.count_within(q, "cameras_each", 1, MAX_PHONE_CAMERAS, "")?;
                if n > cameras {
                    return Err(self.err(
                        q.span(),
                        format!(
                            "cameras_each {n} is more than the {cameras} cameras of {recorder}"
                        ),
                    ));
                }
                n
            }
            None => 1,
        };
        Ok(PhoneGroup {
            name,
            count: to_u32(self.count_within(&p.count, "count", 0, MAX_GROUP, "")?),
            recorder,
            cameras_each: to_u32(cameras_each),
            wan: self.wan_table(p.wan.as_ref())?,
        })
    }

    /// The `index`th `[[collector]]`: remote sites sending telemetry every `interval`
    /// across a WAN given by `wan_delay`, `wan_jitter`, `wan_loss` and `wan_rate`, or by a
    /// `wan` table as other client groups give it (not both).
    fn collector(
        &self,
        names: &mut GroupNames,
        index: usize,
        table: &Spanned<RawCollector>,
    ) -> Result<CollectorGroup> {
        let span = table.span();
        let c = table.get_ref();
        let name = names.claim(self, "collector", index, c.name.as_ref(), &span)?;
        let flat = WanFields {
            delay: c.wan_delay.as_ref(),
            jitter: c.wan_jitter.as_ref(),
            loss: c.wan_loss.as_ref(),
            rate: c.wan_rate.as_ref(),
        };
        let wan = match &c.wan {
            Some(t) if flat.any() => {
                return Err(self.err(
                    t.span(),
                    "give the collectors' WAN either as wan = { delay, jitter, loss, rate } or as wan_delay, wan_jitter, wan_loss and wan_rate, not both",
                ))
            }
            Some(t) => self.wan(&WanFields::of(t.get_ref()), "wan.")?,
            None => self.wan(&flat, "wan_")?,
        };
        Ok(CollectorGroup {
            name,
            count: to_u32(self.count_within(&c.count, "count", 0, MAX_GROUP, "")?),
            wan,
            interval: match &c.interval {
                Some(q) => self.positive_duration(q, "interval")?,
                None => Duration::from_secs(1),
            },
            telemetry_bytes: match &c.telemetry_size {
                Some(q) => self.payload_size(q, "telemetry_size")?,
                None => 2048,
            },
        })
    }

    /// A client group's `wan = { delay, jitter, loss, rate }`, if it has one.
    fn wan_table(&self, table: Option<&Spanned<RawWan>>) -> Result<Option<WanProfile>> {
        table
            .map(|t| self.wan(&WanFields::of(t.get_ref()), "wan."))
            .transpose()
    }

    /// A WAN profile: delay and jitter up to [`MAX_WAN_DELAY`] each, loss 0–50 %, a rate
    /// above 0. `prefix` names the fields in messages (`wan.` or `wan_`).
    fn wan(&self, f: &WanFields<'_>, prefix: &str) -> Result<WanProfile> {
        let mut w = WanProfile::default();
        if let Some(q) = f.delay {
            w.delay = self.wan_duration(q, &format!("{prefix}delay"))?;
        }
        if let Some(q) = f.jitter {
            w.jitter = self.wan_duration(q, &format!("{prefix}jitter"))?;
        }
        if let Some(q) = f.loss {
            let field = format!("{prefix}loss");
            let text = q.get_ref().text.trim();
            let loss = units::parse_share(text)
                .map_err(|e| self.err(q.span(), format!("{field}: {e}")))?;
            if !(0.0..=MAX_WAN_LOSS).contains(&loss) {
                return Err(self.err(
                    q.span(),
                    format!(
                        "{field} must be 0–{} % of segments, not {text}",
                        MAX_WAN_LOSS * 100.0
                    ),
                ));
            }
            w.loss = loss;
        }
        if let Some(q) = f.rate {
            let field = format!("{prefix}rate");
            let rate = units::parse_bitrate(&q.get_ref().text)
                .map_err(|e| self.err(q.span(), format!("{field}: {e}")))?;
            if rate == 0 {
                return Err(self.err(
                    q.span(),
                    format!("{field} must be above 0 bit/s; leave it out for no cap"),
                ));
            }
            w.rate_bps = Some(rate);
        }
        Ok(w)
    }

    /// A WAN delay or jitter: at most [`MAX_WAN_DELAY`].
    fn wan_duration(&self, q: &Spanned<Quantity<DurationKind>>, field: &str) -> Result<Duration> {
        let d = self.duration(q, field)?;
        if d > MAX_WAN_DELAY {
            return Err(self.err(
                q.span(),
                format!(
                    "{field} must be at most {}, not {}",
                    humantime::format_duration(MAX_WAN_DELAY),
                    humantime::format_duration(d)
                ),
            ));
        }
        Ok(d)
    }

    /// The recording server a client group uses: the one named, or the only one.
    fn recorder_ref(
        &self,
        named: Option<&Spanned<String>>,
        table: Range<usize>,
        recorders: &[RecorderSpec],
        failovers: &[String],
    ) -> Result<String> {
        let Some(named) = named else {
            return match recorders {
                [only] => Ok(only.host.clone()),
                _ => Err(self.err(
                    table,
                    format!(
                        "name the recording server these clients use: recorder = \"…\"; recorders are: {}",
                        host_list(recorders)
                    ),
                )),
            };
        };
        let host = named.get_ref();
        if recorders.iter().any(|r| &r.host == host) {
            return Ok(host.clone());
        }
        let what = if failovers.contains(host) {
            format!(
                "{host:?} is a failover server; clients name the recording server it stands in for"
            )
        } else {
            format!("unknown recording server {host:?}")
        };
        Err(self.err(
            named.span(),
            format!("{what}; recorders are: {}", host_list(recorders)),
        ))
    }
}

/// The four settings of a WAN, wherever the file gives them.
struct WanFields<'a> {
    delay: Option<&'a Spanned<Quantity<DurationKind>>>,
    jitter: Option<&'a Spanned<Quantity<DurationKind>>>,
    loss: Option<&'a Spanned<Quantity<ShareKind>>>,
    rate: Option<&'a Spanned<Quantity<BitrateKind>>>,
}

impl<'a> WanFields<'a> {
    fn of(t: &'a RawWan) -> WanFields<'a> {
        WanFields {
            delay: t.delay.as_ref(),
            jitter: t.jitter.as_ref(),
            loss: t.loss.as_ref(),
            rate: t.rate.as_ref(),
        }
    }

    fn any(&self) -> bool {
        self.delay.is_some() || self.jitter.is_some() || self.loss.is_some() || self.rate.is_some()
    }
}

/// Names of client groups: defaulted (`viewer-2`), non-empty, and unique within a kind.
#[derive(Default)]
struct GroupNames {
    seen: HashMap<(&'static str, String), usize>,
}

impl GroupNames {
    fn claim(
        &mut self,
        r: &Resolver<'_>,
        kind: &'static str,
        index: usize,
        name: Option<&Spanned<String>>,
        table: &Range<usize>,
    ) -> Result<String> {
        let (name, offset) = match name {
            Some(n) => (r.non_empty(n, "name")?, n.span().start),
            None => (format!("{kind}-{}", index + 1), table.start),
        };
        if let Some(first) = self.seen.get(&(kind, name.clone())) {
            let (line, _) = r.src.position(*first);
            return Err(r.err(
                offset..offset,
                format!("there is already a {kind} group named {name:?} (line {line}); give each [[{kind}]] a name of its own"),
            ));
        }
        self.seen.insert((kind, name.clone()), offset);
        Ok(name)
    }
}

/// Cameras of the recording server `host` (0 if there is none).
fn camera_count(recorders: &[RecorderSpec], host: &str) -> u64 {
    recorders
        .iter()
        .find(|r| r.host == host)
        .map_or(0, |r| u64::from(r.camera_count()))
}
