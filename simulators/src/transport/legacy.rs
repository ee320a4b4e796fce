//! A legacy client that offers only TLS 1.1, as an old camera integration or an old
//! Windows client would, to find out whether a server still accepts it.
//!
//! rustls cannot offer TLS 1.1, so the ClientHello is built by hand ([`client_hello`]) and
//! the server's first record is parsed by hand ([`parse_first_record`]). vmsbench never
//! completes a TLS 1.1 handshake: [`offer_tls11`] always ends in a [`ConnectError`] whose
//! category says what the server did (refused, accepted, closed, answered with something
//! that is not TLS).
//!
//! ```text
//! record:    type 22 (handshake), version 0x0301, length
//! handshake: type 1 (ClientHello), length (3 bytes)
//! body:      client_version 0x0302, random (32), session id (empty),
//!            cipher suites, compression methods (null),
//!            extensions: server_name, supported_groups, ec_point_formats,
//!                        renegotiation_info (never supported_versions)
//! ```

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::{ConnectError, FailureCategory};
use super::handshake::HANDSHAKE_TIMEOUT;

/// The protocol version TLS 1.1 puts in `client_version` (and in a ServerHello that
/// accepts it).
pub const TLS11: u16 = 0x0302;
/// The version a TLS 1.1 client puts in the record header of its ClientHello (TLS 1.0,
/// for compatibility with the oldest servers).
pub const RECORD_VERSION: u16 = 0x0301;
/// The cipher suites offered, in order: what TLS 1.1 clients (Windows SChannel, Java 7,
/// OpenSSL 1.0.0) typically offered. ECDHE-RSA and ECDHE-ECDSA with AES-CBC, then RSA key
/// exchange with AES-CBC and 3DES.
pub const CIPHER_SUITES: [u16; 7] = [
    0xc013, // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
    0xc014, // TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA
    0xc009, // TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
    0xc00a, // TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA
    0x002f, // TLS_RSA_WITH_AES_128_CBC_SHA
    0x0035, // TLS_RSA_WITH_AES_256_CBC_SHA
    0x000a, // TLS_RSA_WITH_3DES_EDE_CBC_SHA
];
/// The key-exchange groups offered (supported_groups): x25519, secp256r1, secp384r1.
pub const GROUPS: [u16; 3] = [0x001d, 0x0017, 0x0018];

/// TLS record content type: alert.
pub const CONTENT_ALERT: u8 = 21;
/// TLS record content type: handshake.
pub const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake message type: ClientHello.
pub const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// Handshake message type: ServerHello.
pub const HANDSHAKE_SERVER_HELLO: u8 = 2;

/// Extension type: server_name (SNI).
pub const EXT_SERVER_NAME: u16 = 0x0000;
/// Extension type: supported_groups (called elliptic_curves in TLS 1.1 days).
pub const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
/// Extension type: ec_point_formats.
pub const EXT_EC_POINT_FORMATS: u16 = 0x000b;
/// Extension type: supported_versions (TLS 1.3). Never sent by this client.
pub const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
/// Extension type: renegotiation_info.
pub const EXT_RENEGOTIATION_INFO: u16 = 0xff01;

/// The largest record payload a peer may send before encryption is on (2^14 bytes plus the
/// 2048 bytes of expansion TLS 1.2 allows); anything longer is not TLS.
const MAX_RECORD_LEN: usize = 16384 + 2048;
/// Bytes of a record header: type, version, length.
const RECORD_HEADER_LEN: usize = 5;
/// How many bytes of a non-TLS answer are quoted in the error message.
const QUOTE_LEN: usize = 16;

/// The bytes of a ClientHello offering only TLS 1.1, in one TLS record, with `random` as
/// its 32 random bytes. `host` is sent as SNI when it is a DNS name (an IP address is
/// not, as TLS clients do); an invalid name is left out.
pub fn client_hello(host: &str, random: [u8; 32]) -> Vec<u8> {
    let mut body = Vec::with_capacity(160);
    body.extend_from_slice(&TLS11.to_be_bytes());
    body.extend_from_slice(&random);
    body.push(0); // session id: empty
    with_u16_len(&mut body, |b| {
        for suite in CIPHER_SUITES {
            b.extend_from_slice(&suite.to_be_bytes());
        }
    });
    body.extend_from_slice(&[1, 0]); // one compression method: null
    with_u16_len(&mut body, |exts| {
        if let Some(name) = sni_name(host) {
            extension(exts, EXT_SERVER_NAME, |e| {
                with_u16_len(e, |list| {
                    list.push(0); // name type: host_name
                    with_u16_len(list, |n| n.extend_from_slice(name.as_bytes()));
                });
            });
        }
        extension(exts, EXT_SUPPORTED_GROUPS, |e| {
            with_u16_len(e, |list| {
                for group in GROUPS {
                    list.extend_from_slice(&group.to_be_bytes());
                }
            });
        });
        extension(exts, EXT_EC_POINT_FORMATS, |e| e.extend_from_slice(&[1, 0])); // uncompressed
        extension(exts, EXT_RENEGOTIATION_INFO, |e| e.push(0)); // empty: initial handshake
    });

    let mut record = Vec::with_capacity(RECORD_HEADER_LEN + 4 + body.len());
    record.push(CONTENT_HANDSHAKE);
    record.extend_from_slice(&RECORD_VERSION.to_be_bytes());
    with_u16_len(&mut record, |r| {
        r.push(HANDSHAKE_CLIENT_HELLO);
        // The body is a few hundred bytes at most (a DNS name has at most 253), so its
        // length fits the 3 bytes with room to spare.
        let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes();
        r.extend_from_slice(&len[1..]);
        r.extend_from_slice(&body);
    });
    record
}

/// The name to send as SNI: `host` without a trailing dot, if it is a DNS name.
fn sni_name(host: &str) -> Option<&str> {
    match ServerName::try_from(host) {
        Ok(ServerName::DnsName(_)) => Some(host.strip_suffix('.').unwrap_or(host)),
        _ => None,
    }
}

/// Appends a 2-byte length, then what `fill` writes, then patches the length in.
fn with_u16_len(out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    fill(out);
    // Everything written here is far below 64 KiB (see `client_hello`).
    let len = u16::try_from(out.len() - at - 2).unwrap_or(u16::MAX);
    out[at..at + 2].copy_from_slice(&len.to_be_bytes());
}

/// Appends one extension: type, 2-byte length, data.
fn extension(out: &mut Vec<u8>, kind: u16, fill: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(&kind.to_be_bytes());
    with_u16_len(out, fill);
}

/// What the server's first TLS record said in answer to the ClientHello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAnswer {
    /// An alert record.
    Alert {
        /// 1 for warning, 2 for fatal.
        level: u8,
        /// The alert description, e.g. 70 for protocol_version (see [`alert_name`]).
        description: u8,
    },
    /// A ServerHello choosing `version` (its `server_version` field).
    ServerHello {
        /// The protocol version the server chose, e.g. [`TLS11`].
        version: u16,
    },
    /// A well-formed TLS record that is neither an alert nor a ServerHello: a record of
    /// another content type, or a handshake message other than ServerHello.
    Unexpected {
        /// The record's content type.
        content_type: u8,
        /// The handshake message type, for a handshake record.
        handshake_type: Option<u8>,
    },
    /// Bytes that are not a TLS record.
    NotTls {
        /// What is wrong with them.
        reason: String,
    },
}

/// Parses the first TLS record at the start of `buf` (what the server sent so far).
/// `None` means more bytes are needed to tell; bytes that cannot start a TLS record are
/// reported as soon as they are seen, without waiting for a whole record.
pub fn parse_first_record(buf: &[u8]) -> Option<ServerAnswer> {
    let not_tls = |reason: String| Some(ServerAnswer::NotTls { reason });
    let &content_type = buf.first()?;
    if !(20..=24).contains(&content_type) {
        return not_tls(format!(
            "it sent {}, and 0x{content_type:02x} is no TLS record type",
            quote(buf)
        ));
    }
    if let Some(&major) = buf.get(1) {
        if major != 3 {
            return not_tls(format!("the record version's major byte is {major}, not 3"));
        }
    }
    if let Some(&minor) = buf.get(2) {
        if minor > 4 {
            return not_tls(format!("the record version 3.{minor} is no TLS version"));
        }
    }
    let header = buf.get(..RECORD_HEADER_LEN)?;
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    if len == 0 || len > MAX_RECORD_LEN {
        return not_tls(format!("a TLS record cannot be {len} bytes long"));
    }
    let payload = buf.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len)?;
    match content_type {
        CONTENT_ALERT => match payload {
            [level, description, ..] => Some(ServerAnswer::Alert {
                level: *level,
                description: *description,
            }),
            _ => not_tls("an alert record shorter than an alert".to_owned()),
        },
        CONTENT_HANDSHAKE => match payload {
            [HANDSHAKE_SERVER_HELLO, _, _, _, major, minor, ..] => {
                Some(ServerAnswer::ServerHello {
                    version: u16::from_be_bytes([*major, *minor]),
                })
            }
            [HANDSHAKE_SERVER_HELLO, ..] => {
                not_tls("a ServerHello too short to carry a version".to_owned())
            }
            [other, ..] => Some(ServerAnswer::Unexpected {
                content_type,
                handshake_type: Some(*other),
            }),
            [] => not_tls("an empty handshake record".to_owned()),
        },
        _ => Some(ServerAnswer::Unexpected {
            content_type,
            handshake_type: None,
        }),
    }
}

/// The first bytes of `buf` for a message: in hex, and as text if they are printable
/// (a server speaking HTTP or another plaintext protocol on the port).
fn quote(buf: &[u8]) -> String {
    let head = &buf[..buf.len().min(QUOTE_LEN)];
    let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
    let more = if buf.len() > head.len() { " …" } else { "" };
    let text = String::from_utf8_lossy(head);
    if head
        .iter()
        .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\r' || *b == b'\n')
    {
        format!("{}{more} ({:?}{more})", hex.join(" "), text)
    } else {
        format!("{}{more}", hex.join(" "))
    }
}

/// The name of a TLS alert description (RFC 8446 and earlier), e.g. `protocol_version`.
pub fn alert_name(description: u8) -> Option<&'static str> {
    Some(match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => return None,
    })
}

/// The alert's name, or its number when it has none.
fn alert_label(description: u8) -> String {
    match alert_name(description) {
        Some(name) => name.to_owned(),
        None => format!("unknown alert {description}"),
    }
}

/// The name of a protocol version as a server would put it in a ServerHello.
fn version_label(version: u16) -> String {
    match version {
        0x0300 => "SSL 3.0".to_owned(),
        0x0301 => "TLS 1.0".to_owned(),
        0x0302 => "TLS 1.1".to_owned(),
        0x0303 => "TLS 1.2".to_owned(),
        0x0304 => "TLS 1.3".to_owned(),
        other => format!("version 0x{other:04x}"),
    }
}

/// The category and message to report for what the server answered to a ClientHello
/// offering only TLS 1.1 (`host` is the name dialled). [`offer_tls11`] passes over warning
/// alerts before judging.
pub fn judge(answer: &ServerAnswer, host: &str) -> (FailureCategory, String) {
    match answer {
        ServerAnswer::Alert { description, .. } => {
            let alert = alert_label(*description);
            let refused = format!("{host} refused a client offering only TLS 1.1 (alert {alert})");
            match description {
                70 => (
                    FailureCategory::NoCommonParameters,
                    format!(
                        "{refused}: the server requires TLS 1.2 or later; upgrade the client \
                         or its TLS library"
                    ),
                ),
                40 => (
                    FailureCategory::NoCommonParameters,
                    format!(
                        "{refused}: it has nothing in common with a TLS 1.1 client, most \
                         likely because it requires TLS 1.2 or later; upgrade the client or \
                         its TLS library"
                    ),
                ),
                71 => (
                    FailureCategory::NoCommonParameters,
                    format!(
                        "{refused}: the server requires stronger parameters than a TLS 1.1 \
                         client offers (TLS 1.2 or later, modern cipher suites); upgrade the \
                         client or its TLS library"
                    ),
                ),
                _ => (
                    FailureCategory::PeerRejected,
                    format!(
                        "{host} ended the handshake with alert {alert} when offered only \
                         TLS 1.1"
                    ),
                ),
            }
        }
        ServerAnswer::ServerHello { version } if matches!(*version, 0x0300..=0x0302) => {
            let chosen = version_label(*version);
            (
                FailureCategory::Other,
                format!(
                    "{host} accepted a client offering only TLS 1.1 and chose {chosen}, which \
                     it should not: TLS 1.0 and 1.1 are deprecated (RFC 8996); disable them \
                     on the server. vmsbench does not continue TLS 1.1 handshakes, so the \
                     connection was closed after the ServerHello"
                ),
            )
        }
        ServerAnswer::ServerHello { version } => (
            FailureCategory::Protocol,
            format!(
                "{host} answered a client offering only TLS 1.1 with a ServerHello choosing \
                 {}, a version that was not offered; the server's TLS implementation is \
                 broken",
                version_label(*version)
            ),
        ),
        ServerAnswer::Unexpected {
            content_type,
            handshake_type,
        } => {
            let what = match handshake_type {
                Some(t) => format!("handshake message type {t}"),
                None => format!("a TLS record of content type {content_type}"),
            };
            (
                FailureCategory::Protocol,
                format!(
                    "{host} answered a ClientHello with {what} instead of a ServerHello or \
                     an alert; is it speaking TLS as a server on this port?"
                ),
            )
        }
        ServerAnswer::NotTls { reason } => (
            FailureCategory::Protocol,
            format!(
                "{host} did not answer a ClientHello with TLS ({reason}); does it speak TLS \
                 on this port?"
            ),
        ),
    }
}

/// Sends a ClientHello offering only TLS 1.1 on `tcp` (already connected to `addr`, dialled as `host`) and reads the server's answer.
/// Always returns the failure to report: a TLS 1.1 handshake cannot be completed by vmsbench.
pub async fn offer_tls11(tcp: TcpStream, host: &str, addr: SocketAddr) -> ConnectError {
    offer_tls11_within(tcp, host, addr, HANDSHAKE_TIMEOUT).await
}

/// [`offer_tls11`] with `timeout` for sending the ClientHello and reading the answer.
async fn offer_tls11_within(
    mut tcp: TcpStream,
    host: &str,
    addr: SocketAddr,
    timeout: Duration,
) -> ConnectError {
    let error = |category, message| ConnectError {
        host: host.to_owned(),
        addr,
        category,
        message,
    };
    let (category, message) = match tokio::time::timeout(timeout, answer(&mut tcp, host)).await {
        Ok(Ok(answer)) => judge(&answer, host),
        Ok(Err(Failure::Closed { read })) => (
            FailureCategory::Reset,
            if read == 0 {
                format!(
                    "{host} closed the connection without answering a ClientHello offering \
                     only TLS 1.1; it probably refuses TLS 1.1 without saying so, or does not \
                     speak TLS on this port"
                )
            } else {
                format!(
                    "{host} closed the connection in the middle of its answer to a \
                     ClientHello offering only TLS 1.1 (after {read} bytes)"
                )
            },
        ),
        Ok(Err(Failure::Io(e))) => io_failure(&e, host),
        Err(_) => (
            FailureCategory::Timeout,
            format!("{host} did not answer a ClientHello offering only TLS 1.1 within {timeout:?}"),
        ),
    };
    // Whatever the answer, the connection ends here; a server that chose TLS 1.1 gets a
    // FIN instead of the rest of the handshake. Failing to send it changes nothing.
    let _ = tcp.shutdown().await;
    error(category, message)
}

/// Why no answer could be read.
enum Failure {
    /// The server closed the connection after `read` bytes (none or part of a record).
    Closed {
        /// Bytes received before the end of the stream.
        read: usize,
    },
    /// Sending or receiving failed.
    Io(io::Error),
}

/// The category and message for a socket error while offering TLS 1.1.
fn io_failure(e: &io::Error, host: &str) -> (FailureCategory, String) {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => (
            FailureCategory::Reset,
            format!(
                "{host} reset the connection when offered only TLS 1.1 ({e}); it probably \
                 refuses TLS 1.1 without saying so, or does not speak TLS on this port"
            ),
        ),
        _ => (
            FailureCategory::Other,
            format!("offering TLS 1.1 to {host} failed: {e}"),
        ),
    }
}

/// Sends the ClientHello and reads until the server's first record that is not a warning
/// alert can be judged.
async fn answer(tcp: &mut TcpStream, host: &str) -> Result<ServerAnswer, Failure> {
    tcp.write_all(&client_hello(host, fastrand_random()))
        .await
        .map_err(Failure::Io)?;
    tcp.flush().await.map_err(Failure::Io)?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(answer) = parse_first_record(&buf) {
            // A warning (such as unrecognized_name) does not end the handshake: a server
            // may send one before its ServerHello. close_notify does end it.
            if matches!(answer, ServerAnswer::Alert { level: 1, description } if description != 0) {
                let len = match buf.get(3..RECORD_HEADER_LEN) {
                    Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
                    _ => return Ok(answer),
                };
                buf.drain(..(RECORD_HEADER_LEN + len).min(buf.len()));
                continue;
            }
            return Ok(answer);
        }
        let n = tcp.read(&mut chunk).await.map_err(Failure::Io)?;
        if n == 0 {
            return Err(Failure::Closed { read: buf.len() });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// 32 random bytes for the ClientHello.
fn fastrand_random() -> [u8; 32] {
    let mut random = [0u8; 32];
    random.fill_with(|| fastrand::u8(..));
    random
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::ServerConfig;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::pki::{KeyType, Pki};
    use crate::transport::{Cipher, KxGroup, Listener, TlsSettings, TlsVersion};

    const HOST: &str = "recorder-1.vms.test";

    /// The extensions of a ClientHello record built by [`client_hello`], as (type, data).
    fn extensions(hello: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let u16_at = |i: usize| usize::from(u16::from_be_bytes([hello[i], hello[i + 1]]));
        // Record header (5), handshake header (4), version (2), random (32).
        let mut i = 5 + 4 + 2 + 32;
        i += 1 + usize::from(hello[i]); // session id
        i += 2 + u16_at(i); // cipher suites
        i += 1 + usize::from(hello[i]); // compression methods
        let end = i + 2 + u16_at(i);
        assert_eq!(end, hello.len(), "the extensions end the record");
        i += 2;
        let mut out = Vec::new();
        while i < end {
            let kind = u16::from_be_bytes([hello[i], hello[i + 1]]);
            let len = u16_at(i + 2);
            out.push((kind, hello[i + 4..i + 4 + len].to_vec()));
            i += 4 + len;
        }
        assert_eq!(i, end, "the last extension ends where the extensions do");
        out
    }

    #[test]
    fn client_hello_offers_only_tls11_with_consistent_lengths() {
        let random = [7u8; 32];
        let hello = client_hello(HOST, random);
        assert_eq!(hello[0], CONTENT_HANDSHAKE);
        assert_eq!(&hello[1..3], &[0x03, 0x01], "record version TLS 1.0");
        let record_len = usize::from(u16::from_be_bytes([hello[3], hello[4]]));
        assert_eq!(record_len, hello.len() - 5);
        assert_eq!(hello[5], HANDSHAKE_CLIENT_HELLO);
        let body_len =
            usize::from(hello[6]) << 16 | usize::from(hello[7]) << 8 | usize::from(hello[8]);
        assert_eq!(body_len, record_len - 4);
        assert_eq!(&hello[9..11], &[0x03, 0x02], "client_version TLS 1.1");
        assert_eq!(&hello[11..43], &random);
        assert_eq!(hello[43], 0, "empty session id");
        let suites_len = usize::from(u16::from_be_bytes([hello[44], hello[45]]));
        let suites: Vec<u16> = hello[46..46 + suites_len]
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(suites, CIPHER_SUITES);
        assert_eq!(
            &hello[46 + suites_len..48 + suites_len],
            &[1, 0],
            "null compression"
        );

        let exts = extensions(&hello);
        let kinds: Vec<u16> = exts.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [
                EXT_SERVER_NAME,
                EXT_SUPPORTED_GROUPS,
                EXT_EC_POINT_FORMATS,
                EXT_RENEGOTIATION_INFO
            ]
        );
        assert!(!kinds.contains(&EXT_SUPPORTED_VERSIONS));
        let mut sni = vec![0, 22, 0, 0, 19];
        sni.extend_from_slice(HOST.as_bytes());
        assert_eq!(exts[0].1, sni);
        assert_eq!(exts[1].1, [0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]);
        assert_eq!(exts[2].1, [1, 0]);
        assert_eq!(exts[3].1, [0]);
    }

    #[test]
    fn client_hello_leaves_out_sni_for_ip_addresses_and_trailing_dots() {
        for ip in ["127.0.0.1", "::1"] {
            let kinds: Vec<u16> = extensions(&client_hello(ip, [0; 32]))
                .iter()
                .map(|(k, _)| *k)
                .collect();
            assert!(!kinds.contains(&EXT_SERVER_NAME), "{ip}");
        }
        let exts = extensions(&client_hello("nvr.example.", [0; 32]));
        assert_eq!(exts[0].0, EXT_SERVER_NAME);
        assert!(exts[0].1.ends_with(b"nvr.example"));
    }

    #[test]
    fn parse_first_record_reads_alerts_server_hellos_and_garbage() {
        let alert = [21, 3, 3, 0, 2, 2, 70];
        for cut in 0..alert.len() {
            assert_eq!(parse_first_record(&alert[..cut]), None, "{cut} bytes");
        }
        assert_eq!(
            parse_first_record(&alert),
            Some(ServerAnswer::Alert {
                level: 2,
                description: 70
            })
        );
        let hello = [22, 3, 2, 0, 6, 2, 0, 0, 70, 3, 2];
        assert_eq!(
            parse_first_record(&hello),
            Some(ServerAnswer::ServerHello { version: TLS11 })
        );
        assert_eq!(
            parse_first_record(&[22, 3, 3, 0, 4, 11, 0, 0, 0]),
            Some(ServerAnswer::Unexpected {
                content_type: 22,
                handshake_type: Some(11)
            })
        );
        for garbage in [
            &b"HTTP/1.1 400 Bad Request\r\n"[..],
            &[22, 2],
            &[21, 3, 9],
            &[21, 3, 3, 0xff, 0xff],
        ] {
            assert!(
                matches!(
                    parse_first_record(garbage),
                    Some(ServerAnswer::NotTls { .. })
                ),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn judge_maps_alerts_to_categories() {
        let judged = |description| {
            judge(
                &ServerAnswer::Alert {
                    level: 2,
                    description,
                },
                HOST,
            )
        };
        let (category, message) = judged(70);
        assert_eq!(category, FailureCategory::NoCommonParameters);
        assert!(message.contains("alert protocol_version"), "{message}");
        assert!(message.contains("TLS 1.2 or later"), "{message}");
        assert_eq!(judged(40).0, FailureCategory::NoCommonParameters);
        assert_eq!(judged(71).0, FailureCategory::NoCommonParameters);
        let (category, message) = judged(112);
        assert_eq!(category, FailureCategory::PeerRejected);
        assert!(message.contains("unrecognized_name"), "{message}");
        assert!(judged(200).1.contains("unknown alert 200"));
        let (category, message) = judge(&ServerAnswer::ServerHello { version: TLS11 }, HOST);
        assert_eq!(category, FailureCategory::Other);
        assert!(message.contains("accepted"), "{message}");
        assert_eq!(
            judge(&ServerAnswer::ServerHello { version: 0x0303 }, HOST).0,
            FailureCategory::Protocol
        );
    }

    /// Offers TLS 1.1 to a rustls server with `settings` and returns both sides' failures.
    async fn against_rustls(settings: &TlsSettings) -> (ConnectError, ConnectError) {
        let pki = Pki::generate(&[HOST], KeyType::Rsa2048, 30).expect("PKI");
        let config: Arc<ServerConfig> = pki.server_config(HOST, settings).expect("server config");
        let listener = Listener::bind("127.0.0.1:0".parse().expect("address"), Some(config))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            let incoming = listener.accept().await.expect("accept");
            incoming.handshake().await.map(|_| ())
        });
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let client = offer_tls11(tcp, HOST, addr).await;
        let server = match server.await.expect("server task") {
            Ok(()) => panic!("the server completed a TLS 1.1 handshake"),
            Err(e) => e,
        };
        (client, server)
    }

    fn assert_refused(client: &ConnectError, server: &ConnectError) {
        eprintln!("client: {client} [{:?}]", client.category);
        eprintln!("server: {server} [{:?}]", server.category);
        assert_eq!(
            client.category,
            FailureCategory::NoCommonParameters,
            "{client}"
        );
        assert!(client.message.contains("TLS 1.1"), "{client}");
        assert_eq!(client.host, HOST);
        // rustls checks for signature_algorithms (a TLS 1.2 extension that a TLS 1.1 client
        // does not send) before it looks at the version, so it answers handshake_failure
        // rather than protocol_version.
        assert!(
            client.message.contains("(alert handshake_failure)"),
            "{client}"
        );
        assert_eq!(
            server.category,
            FailureCategory::NoCommonParameters,
            "{server}"
        );
    }

    #[tokio::test]
    async fn rustls_server_with_default_settings_refuses_tls11() {
        let (client, server) = against_rustls(&TlsSettings::default()).await;
        assert_refused(&client, &server);
    }

    #[tokio::test]
    async fn rustls_server_allowing_tls12_and_tls13_refuses_tls11() {
        let settings = TlsSettings {
            versions: vec![TlsVersion::Tls13, TlsVersion::Tls12],
            ciphers: vec![
                Cipher::Aes128Gcm,
                Cipher::Aes256Gcm,
                Cipher::Chacha20Poly1305,
            ],
            groups: vec![KxGroup::X25519, KxGroup::Secp256r1, KxGroup::Secp384r1],
        };
        let (client, server) = against_rustls(&settings).await;
        assert_refused(&client, &server);
    }

    /// A plaintext server that runs `serve` on its one connection; returns its address.
    async fn plain_server<F, Fut>(serve: F) -> SocketAddr
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            serve(tcp).await;
        });
        addr
    }

    /// Reads the ClientHello's record (header and payload) off `tcp`.
    async fn read_hello(tcp: &mut TcpStream) -> Vec<u8> {
        let mut header = [0u8; 5];
        tcp.read_exact(&mut header).await.expect("record header");
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes([header[3], header[4]]))];
        tcp.read_exact(&mut payload).await.expect("record payload");
        [&header[..], &payload].concat()
    }

    /// Holds `tcp` open until the client closes it.
    async fn drain(mut tcp: TcpStream) {
        let mut sink = Vec::new();
        let _ = tcp.read_to_end(&mut sink).await;
    }

    async fn offer(addr: SocketAddr) -> ConnectError {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        offer_tls11(tcp, HOST, addr).await
    }

    #[tokio::test]
    async fn garbage_answer_is_a_protocol_failure() {
        let addr = plain_server(|mut tcp| async move {
            read_hello(&mut tcp).await;
            tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                .await
                .expect("write");
            drain(tcp).await;
        })
        .await;
        let err = offer(addr).await;
        assert_eq!(err.category, FailureCategory::Protocol, "{err}");
        assert!(err.message.contains("HTTP/1.1"), "{err}");
    }

    #[tokio::test]
    async fn immediate_close_is_a_reset() {
        let addr = plain_server(|tcp| async move { drop(tcp) }).await;
        let err = offer(addr).await;
        assert_eq!(err.category, FailureCategory::Reset, "{err}");
    }

    #[tokio::test]
    async fn server_accepting_tls11_is_reported() {
        let addr = plain_server(|mut tcp| async move {
            let hello = read_hello(&mut tcp).await;
            assert_eq!(&hello[9..11], &[3, 2]);
            // A warning first, as some servers send for an unknown SNI name, then a
            // ServerHello choosing TLS 1.1.
            let mut answer = vec![21, 3, 2, 0, 2, 1, 112];
            answer.extend_from_slice(&[22, 3, 2, 0, 42, 2, 0, 0, 38, 3, 2]);
            answer.extend_from_slice(&[0x5a; 32]);
            answer.extend_from_slice(&[0, 0xc0, 0x13, 0]);
            tcp.write_all(&answer).await.expect("write");
            drain(tcp).await;
        })
        .await;
        let err = offer(addr).await;
        assert_eq!(err.category, FailureCategory::Other, "{err}");
        assert!(err.message.contains("accepted"), "{err}");
        assert!(err.message.contains("TLS 1.1"), "{err}");
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let addr = plain_server(drain).await;
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let err = offer_tls11_within(tcp, HOST, addr, Duration::from_millis(200)).await;
        assert_eq!(err.category, FailureCategory::Timeout, "{err}");
    }
}
