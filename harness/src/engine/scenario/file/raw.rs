//! The file as written: one struct per TOML table, every field optional where the file may
//! leave it out, every value that resolution may need to point at wrapped in [`Spanned`].
//! Unknown fields are refused here (serde lists the valid ones); everything else is checked
//! in `resolve`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub name: Option<Spanned<String>>,
    pub description: Option<String>,
    pub seed: Option<Spanned<Quantity<CountKind>>>,
    pub tls: Option<RawTls>,
    pub encryption: Option<RawEncryption>,
    pub management: Option<RawManagement>,
    #[serde(default)]
    pub recorder: Tables<Spanned<RawRecorder>>,
    #[serde(default)]
    pub failover: Tables<Spanned<RawFailover>>,
    pub event_server: Option<Spanned<RawEventServer>>,
    pub mobile_server: Option<Spanned<RawMobileServer>>,
    #[serde(default)]
    pub viewer: Tables<Spanned<RawViewer>>,
    #[serde(default)]
    pub integration: Tables<Spanned<RawIntegration>>,
    #[serde(default)]
    pub phone: Tables<Spanned<RawPhone>>,
    #[serde(default)]
    pub collector: Tables<Spanned<RawCollector>>,
    #[serde(default)]
    pub event: Tables<Spanned<RawEvent>>,
    pub certificates: Option<Spanned<RawCertificates>>,
    #[serde(default)]
    pub fault: Tables<Spanned<RawFault>>,
    pub run: Option<RawRun>,
}

/// `[tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub versions: Option<Spanned<Vec<Spanned<Quantity<VersionKind>>>>>,
    pub ciphers: Option<Spanned<Vec<Spanned<String>>>>,
    pub groups: Option<Spanned<Vec<Spanned<String>>>>,
    pub key: Option<Spanned<String>>,
}

/// `[encryption]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEncryption {
    pub server: Option<Spanned<bool>>,
    pub streaming_media: Option<Spanned<bool>>,
    pub mobile_server: Option<Spanned<bool>>,
    pub event_server: Option<Spanned<bool>>,
    pub allow_unsupported: Option<Spanned<bool>>,
}

/// `[management]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManagement {
    pub host: Option<Spanned<String>>,
    pub config_size: Option<Spanned<Quantity<SizeKind>>>,
    pub config_refresh: Option<Spanned<Quantity<DurationKind>>>,
    pub config_check: Option<Spanned<Quantity<DurationKind>>>,
    pub status_interval: Option<Spanned<Quantity<DurationKind>>>,
    pub status_request_size: Option<Spanned<Quantity<SizeKind>>>,
    pub status_reply_size: Option<Spanned<Quantity<SizeKind>>>,
}

/// One `[[recorder]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecorder {
    pub host: Spanned<String>,
    pub failover: Option<Spanned<String>>,
    pub cameras: Spanned<Vec<Spanned<RawCameraGroup>>>,
}

/// One entry of a recorder's `cameras`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCameraGroup {
    pub profile: Option<Spanned<ProfileRef>>,
    pub count: Spanned<Quantity<CountKind>>,
}

/// A profile: a preset's name, or an inline table.
#[derive(Debug)]
pub(super) enum ProfileRef {
    Name(String),
    Inline(Box<RawProfile>),
}

/// An inline profile: `{ name, resolution, fps, bitrate, gop, ip_ratio, vbr }`, optionally
/// starting from `preset`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub preset: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
    pub resolution: Option<Spanned<String>>,
    pub fps: Option<Spanned<Quantity<CountKind>>>,
    pub bitrate: Option<Spanned<Quantity<BitrateKind>>>,
    pub gop: Option<Spanned<Quantity<CountKind>>>,
    pub ip_ratio: Option<Spanned<Quantity<NumberKind>>>,
    pub vbr: Option<Spanned<Quantity<NumberKind>>>,
}

/// One `[[failover]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFailover {
    pub host: Spanned<String>,
}

/// `[event_server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEventServer {
    pub host: Spanned<String>,
    pub events_per_s: Option<Spanned<Quantity<CountKind>>>,
    pub event_size: Option<Spanned<Quantity<SizeKind>>>,
}

/// `[mobile_server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMobileServer {
    pub host: Spanned<String>,
    pub mode: Option<Spanned<String>>,
    pub transcode_profile: Option<Spanned<ProfileRef>>,
}

/// One `[[viewer]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawViewer {
    pub name: Option<Spanned<String>>,
    pub count: Spanned<Quantity<CountKind>>,
    pub recorder: Option<Spanned<String>>,
    pub view: Spanned<Quantity<CountKind>>,
    pub playback: Option<Spanned<Quantity<CountKind>>>,
    pub wan: Option<Spanned<RawWan>>,
}

/// One `[[integration]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntegration {
    pub name: Option<Spanned<String>>,
    pub count: Spanned<Quantity<CountKind>>,
    pub recorder: Option<Spanned<String>>,
    pub streams: Spanned<Quantity<CountKind>>,
    pub tls: Option<bool>,
    pub wan: Option<Spanned<RawWan>>,
}

/// One `[[phone]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPhone {
    pub name: Option<Spanned<String>>,
    pub count: Spanned<Quantity<CountKind>>,
    pub recorder: Option<Spanned<String>>,
    pub cameras_each: Option<Spanned<Quantity<CountKind>>>,
    pub wan: Option<Spanned<RawWan>>,
}

/// One `[[collector]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCollector {
    pub name: Option<Spanned<String>>,
    pub count: Spanned<Quantity<CountKind>>,
    pub wan_delay: Option<Spanned<Quantity<DurationKind>>>,
    pub wan_jitter: Option<Spanned<Quantity<DurationKind>>>,
    pub wan_loss: Option<Spanned<Quantity<ShareKind>>>,
    pub wan_rate: Option<Spanned<Quantity<BitrateKind>>>,
    pub wan: Option<Spanned<RawWan>>,
    pub interval: Option<Spanned<Quantity<DurationKind>>>,
    pub telemetry_size: Option<Spanned<Quantity<SizeKind>>>,
}

/// A client group's `wan = { delay, jitter, loss, rate }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWan {
    pub delay: Option<Spanned<Quantity<DurationKind>>>,
    pub jitter: Option<Spanned<Quantity<DurationKind>>>,
    pub loss: Option<Spanned<Quantity<ShareKind>>>,
    pub rate: Option<Spanned<Quantity<BitrateKind>>>,
}

/// One `[[event]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvent {
    pub at: Spanned<Quantity<DurationKind>>,
    pub action: Spanned<String>,
    pub host: Spanned<String>,
}

/// `[certificates]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCertificates {
    pub dir: Spanned<String>,
    pub ca: Option<Spanned<String>>,
}

/// One `[[fault]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    pub host: Spanned<String>,
    pub kind: Spanned<String>,
}

/// `[run]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRun {
    pub queue_frames: Option<Spanned<Quantity<CountKind>>>,
    pub connect_rate: Option<Spanned<Quantity<CountKind>>>,
    pub server_threads: Option<Spanned<Quantity<CountKind>>>,
    pub client_threads: Option<Spanned<Quantity<CountKind>>>,
}

/// The entries of an array of tables (`[[viewer]]`); refusing a single `[viewer]` table
/// with a message that says how to write it.
#[derive(Debug)]
pub(super) struct Tables<T>(pub Vec<T>);

impl<T> Default for Tables<T> {
    fn default() -> Self {
        Tables(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Tables<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Tables<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of tables: write its header with double brackets, like [[viewer]], once per entry")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element()? {
                    v.push(x);
                }
                Ok(Tables(v))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

impl<'de> Deserialize<'de> for ProfileRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ProfileRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a profile name such as \"1080p\", or an inline table { name, resolution, fps, bitrate, gop, ip_ratio, vbr }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ProfileRef, E> {
                Ok(ProfileRef::Name(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ProfileRef, A::Error> {
                RawProfile::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|p| ProfileRef::Inline(Box::new(p)))
            }
        }
        d.deserialize_any(V)
    }
}

/// What a [`Quantity`] holds, for the "expected …" of a type error.
pub(super) trait Kind {
    /// What a valid value looks like.
    const EXPECTING: &'static str;
}

/// A count: an integer (or a string such as `"10k"`).
#[derive(Debug)]
pub(super) struct CountKind;
impl Kind for CountKind {
    const EXPECTING: &'static str = "a whole number such as 32 (or a string such as \"10k\")";
}

/// A duration: a string such as `"5s"`, or a number of seconds.
#[derive(Debug)]
pub(super) struct DurationKind;
impl Kind for DurationKind {
    const EXPECTING: &'static str =
        "a duration such as \"5s\" or \"500ms\" (or a number of seconds)";
}

/// A size: a string such as `"4MiB"`, or a number of bytes.
#[derive(Debug)]
pub(super) struct SizeKind;
impl Kind for SizeKind {
    const EXPECTING: &'static str = "a size such as \"4MiB\" or \"400B\" (or a number of bytes)";
}

/// A bitrate: a string such as `"4Mbit"`, or a number of bit/s.
#[derive(Debug)]
pub(super) struct BitrateKind;
impl Kind for BitrateKind {
    const EXPECTING: &'static str = "a bitrate such as \"4Mbit\" (or a number of bit/s)";
}

/// A share: a percentage such as `"0.5%"`, or a fraction.
#[derive(Debug)]
pub(super) struct ShareKind;
impl Kind for ShareKind {
    const EXPECTING: &'static str = "a percentage such as \"0.5%\" (or a fraction such as 0.005)";
}

/// A plain number (integer or float).
#[derive(Debug)]
pub(super) struct NumberKind;
impl Kind for NumberKind {
    const EXPECTING: &'static str = "a number such as 12 or 0.1";
}

/// A TLS version: `"1.3"` (or the number 1.3).
#[derive(Debug)]
pub(super) struct VersionKind;
impl Kind for VersionKind {
    const EXPECTING: &'static str = "a TLS version, \"1.2\" or \"1.3\"";
}

/// A value that may be written as a number or as a string with a unit; kept as text and
/// parsed during resolution by the parser for its kind (`crate::units`).
pub(super) struct Quantity<K> {
    pub text: String,
    kind: PhantomData<K>,
}

impl<K> fmt::Debug for Quantity<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.text.fmt(f)
    }
}

impl<'de, K: Kind> Deserialize<'de> for Quantity<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<K>(PhantomData<K>);
        impl<K: Kind> V<K> {
            fn ok<E>(text: String) -> Result<Quantity<K>, E> {
                Ok(Quantity {
                    text,
                    kind: PhantomData,
                })
            }
        }
        impl<K: Kind> Visitor<'_> for V<K> {
            type Value = Quantity<K>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(K::EXPECTING)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity<K>, E> {
                Self::ok(v.to_owned())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity<K>, E> {
                Self::ok(v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity<K>, E> {
                Self::ok(v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity<K>, E> {
                Self::ok(v.to_string())
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}
