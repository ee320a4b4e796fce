//! The streaming engine over real sockets on 127.0.0.1, plaintext and TLS: a recording
//! server's frames reach viewers whole and in order, refused handshakes say why, garbage
//! fails only its own connection, a stalled sender shows in corrected latency only, a slow
//! viewer is dropped until the next key frame, and the bulk sender streams unpaced frames.
//!
//! Every assertion is about correctness (bytes, counts, categories, order); none bounds how
//! fast anything runs. Waits poll a condition with a generous deadline instead.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use simulators::clock::RunClock;
use simulators::metrics::Window;
use simulators::pki::{KeyType, Pki};
use simulators::role::bulk::BulkSender;
use simulators::role::recorder::{Recorder, RecorderConfig, Source, DEFAULT_QUEUE_FRAMES};
use simulators::role::timeouts::ServerTimeouts;
use simulators::role::viewer::{
    Endpoint, FrameHook, StreamRequest, Viewer, ViewerConfig, ViewerError,
};
use simulators::role::RoleRuntime;
use simulators::transport::{
    ConnectError, Connector, FailureCategory, Listener, Mode, Stream, TlsSettings,
};
use simulators::video::{Camera, Playback, Profile};
use simulators::wire::{self, Header, Kind, Subscribe, WireError, MAGIC, MAX_PAYLOAD, VERSION};
use tokio::io::{AsyncWriteExt, BufReader};

use crate::support::{
    block_on, cameras, cameras_of, client_stream, close_window, connector, live_viewer, localhost,
    open_window, wait_until, Recording, HOST, OTHER_HOST, PATIENCE,
};

const MODES: [Mode; 2] = [Mode::Plain, Mode::Tls];

fn pki() -> Pki {
    Pki::generate(&[HOST], KeyType::EcdsaP256, 30).expect("PKI generation")
}

async fn listener(mode: Mode, pki: &Pki) -> Listener {
    let tls = match mode {
        Mode::Plain => None,
        Mode::Tls => Some(
            pki.server_config(HOST, &TlsSettings::default())
                .expect("server config"),
        ),
    };
    Listener::bind(localhost(), tls)
        .await
        .expect("bind 127.0.0.1:0")
}

/// A 4K camera at 80 Mbit/s (10 MB/s, I-frames ≈ 2.9 MB every second): two of them
/// outrun the several MB a loopback connection's socket buffers can hold within a second.
fn flood_profile() -> Profile {
    Profile {
        name: "flood".to_owned(),
        bitrate_bps: 80_000_000,
        ..Profile::preset("4k").expect("preset")
    }
}

/// One recording server with its cameras, and a runtime for viewers, on one run clock.
struct Harness {
    mode: Mode,
    clock: RunClock,
    window: Arc<Window>,
    pki: Pki,
    cameras: Vec<Camera>,
    start_ns: u64,
    recorder: Recorder,
    viewer_rt: RoleRuntime,
    _recorder_rt: RoleRuntime,
}

impl Harness {
    /// Starts a recording server with `cameras` and per-connection queues of
    /// `queue_frames`, listening on 127.0.0.1:0 in `mode`.
    async fn start(mode: Mode, cameras: Vec<Camera>, queue_frames: usize) -> Harness {
        let pki = pki();
        let recorder_rt = RoleRuntime::new("recorder-1", 1).expect("recorder runtime");
        let viewer_rt = RoleRuntime::new("viewers", 1).expect("viewer runtime");
        let listener = listener(mode, &pki).await;
        let Recording {
            clock,
            window,
            cameras,
            start_ns,
            recorder,
            rt: recorder_rt,
        } = Recording::start(recorder_rt, listener, cameras, queue_frames);
        assert_eq!(recorder.mode(), mode);
        Harness {
            mode,
            clock,
            window,
            pki,
            cameras,
            start_ns,
            recorder,
            viewer_rt,
            _recorder_rt: recorder_rt,
        }
    }

    fn connector(&self) -> Connector {
        connector(self.mode, &self.pki)
    }

    fn camera(&self, id: u32) -> &Camera {
        self.cameras
            .iter()
            .find(|c| c.id == id)
            .expect("camera of this harness")
    }

    /// A live viewer of `ids` dialling the recorder as HOST in the harness's mode.
    fn viewer_config(&self, ids: &[u32], check: Option<FrameHook>) -> ViewerConfig {
        ViewerConfig {
            on_frame: check,
            ..live_viewer(
                self.recorder.addr(),
                ids.iter().map(|id| self.camera(*id)),
                self.connector(),
                "viewer-recorder",
            )
        }
    }

    fn start_viewer(&self, config: ViewerConfig) -> Viewer {
        Viewer::start(&self.viewer_rt, config, self.clock, self.window.clone())
    }

    /// Opens the window a little ahead of now; returns its start.
    fn open_window(&self) -> u64 {
        open_window(&self.clock, &self.window)
    }

    /// Closes the window a little ahead of now; returns its end.
    fn close_window(&self) -> u64 {
        close_window(&self.clock, &self.window)
    }

    /// Frames of the cameras `ids` that fall due in `[from, to)`.
    fn frames_due(&self, ids: &[u32], from: u64, to: u64) -> u64 {
        ids.iter()
            .map(|id| {
                self.camera(*id)
                    .frames_due(Playback::Live, self.start_ns, from, to)
            })
            .sum()
    }
}

/// What a content check saw of one frame.
#[derive(Clone, Copy, Debug)]
struct Seen {
    stream: u32,
    seq: u64,
    keyframe: bool,
}

#[derive(Default)]
struct Observed {
    seen: Vec<Seen>,
    problems: Vec<String>,
}

impl Observed {
    fn streams(&self) -> usize {
        let mut s: Vec<u32> = self.seen.iter().map(|s| s.stream).collect();
        s.sort_unstable();
        s.dedup();
        s.len()
    }
}

/// A frame check that regenerates every frame from the cameras and compares it, byte for
/// byte, with what arrived.
fn content_check(cameras: &[Camera], start_ns: u64) -> (FrameHook, Arc<Mutex<Observed>>) {
    let observed = Arc::new(Mutex::new(Observed::default()));
    let cameras: BTreeMap<u32, Camera> = cameras.iter().map(|c| (c.id, c.clone())).collect();
    let out = observed.clone();
    let check: FrameHook = Arc::new(move |h: &Header, payload: &[u8]| {
        let problem = frame_problem(&cameras, start_ns, h, payload);
        if let Ok(mut o) = out.lock() {
            o.seen.push(Seen {
                stream: h.stream_id,
                seq: h.seq,
                keyframe: h.is_keyframe(),
            });
            if let Some(p) = problem {
                if o.problems.len() < 20 {
                    o.problems.push(p);
                }
            }
        }
    });
    (check, observed)
}

/// What is wrong with a received live frame, if anything.
fn frame_problem(
    cameras: &BTreeMap<u32, Camera>,
    start_ns: u64,
    h: &Header,
    payload: &[u8],
) -> Option<String> {
    let Some(camera) = cameras.get(&h.stream_id) else {
        return Some(format!("frame of unknown stream {}", h.stream_id));
    };
    let spec = camera.frame(Playback::Live, start_ns, h.seq);
    let expected = camera.payload(&spec);
    let at = format!("stream {} seq {}", h.stream_id, h.seq);
    if h.kind != Kind::Frame {
        Some(format!("{at}: kind {:?}", h.kind))
    } else if payload.len() != h.payload_len as usize {
        Some(format!(
            "{at}: {} payload bytes, header says {}",
            payload.len(),
            h.payload_len
        ))
    } else if payload != &expected[..] {
        Some(format!(
            "{at}: payload differs ({} bytes, expected {})",
            payload.len(),
            expected.len()
        ))
    } else if h.scheduled_ns != spec.due_ns {
        Some(format!(
            "{at}: scheduled {} ns, due {} ns",
            h.scheduled_ns, spec.due_ns
        ))
    } else if h.is_keyframe() != spec.keyframe {
        Some(format!("{at}: key-frame flag {}", h.is_keyframe()))
    } else if h.sent_ns < h.scheduled_ns {
        Some(format!("{at}: sent before it was due"))
    } else {
        None
    }
}

/// A client speaking the wire protocol by hand (plaintext or TLS, per its connector), or
/// sending whatever bytes a test wants.
#[derive(Debug)]
struct RawClient {
    stream: BufReader<Stream>,
}

impl RawClient {
    async fn connect(connector: &Connector, addr: SocketAddr) -> Result<RawClient, ConnectError> {
        let connected = connector.connect(addr, HOST).await?;
        Ok(RawClient {
            stream: BufReader::with_capacity(64 * 1024, connected.stream),
        })
    }

    /// Connects with a fixed 256 KiB receive buffer (setting it turns off the kernel's
    /// receive-buffer auto-tuning, which on loopback grows to tens of MB): a client that
    /// stops reading then blocks the sender once its send buffer (≤ 4 MB) is full.
    async fn connect_small_window(mode: Mode, pki: &Pki, addr: SocketAddr) -> RawClient {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(256 * 1024).expect("SO_RCVBUF");
        let tcp = socket.connect(addr).await.expect("TCP connect");
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        let stream = client_stream(mode, pki, tcp).await;
        RawClient {
            stream: BufReader::with_capacity(64 * 1024, stream),
        }
    }

    async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    async fn subscribe(&mut self, ids: &[u32]) {
        self.send_bytes(&subscribe_message(ids).await).await;
    }

    async fn read(&mut self) -> Result<Option<(Header, Vec<u8>)>, WireError> {
        let Some(h) = wire::read_header(&mut self.stream, MAX_PAYLOAD).await? else {
            return Ok(None);
        };
        let mut payload = Vec::new();
        wire::read_payload(&mut self.stream, &h, &mut payload).await?;
        Ok(Some((h, payload)))
    }

    /// Reads the recorder's answer to a bad request: it must be an Error message.
    async fn expect_refusal(&mut self) -> String {
        let answer = tokio::time::timeout(PATIENCE, self.read())
            .await
            .expect("the recorder answers a bad request");
        match answer {
            Ok(Some((h, p))) if h.kind == Kind::Error => String::from_utf8_lossy(&p).into_owned(),
            other => panic!("expected an Error message, got {other:?}"),
        }
    }

    /// Reads until the connection ends; no frame may arrive. Returns how it ended.
    async fn expect_closed(&mut self) -> String {
        loop {
            let r = tokio::time::timeout(PATIENCE, self.read())
                .await
                .expect("the recorder closes a failed connection");
            match r {
                Ok(Some((h, _))) if h.kind == Kind::Frame => {
                    panic!("a frame arrived on a failed connection: {h:?}")
                }
                Ok(Some(_)) => continue,
                Ok(None) => return "closed".to_owned(),
                Err(e) => return e.to_string(),
            }
        }
    }
}

/// A live subscription to the cameras `ids`, as a message on the wire.
async fn subscribe_message(ids: &[u32]) -> Vec<u8> {
    let sub = Subscribe {
        cameras: ids.to_vec(),
        playback_speed: None,
        label: String::new(),
    };
    let mut b = Vec::new();
    wire::write_message(&mut b, Header::new(Kind::Subscribe), &sub.encode())
        .await
        .expect("encode subscribe");
    b
}

/// 40 bytes that are not a vmsbench header, nor a TLS record.
fn garbage() -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(0x6a7b);
    let mut b = b"GARBAGE!".to_vec();
    b.extend((0..wire::HEADER_LEN - 8).map(|_| rng.u8(..)));
    assert_ne!(b[0..4], MAGIC);
    b
}

/// A header with valid magic and version announcing a payload far above any limit.
fn huge_header() -> Vec<u8> {
    let mut h = Header::new(Kind::Subscribe).encode();
    h[36..40].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(h[0..4], MAGIC);
    assert_eq!(h[4], VERSION);
    h.to_vec()
}

fn assert_negotiated_tls13(n: Option<&simulators::transport::Negotiated>, who: &str) {
    let n = n.unwrap_or_else(|| panic!("{who}: no negotiated TLS parameters"));
    assert_eq!(n.version, "TLSv1_3", "{who}: {n:?}");
    assert_eq!(n.suite, "TLS13_AES_256_GCM_SHA384", "{who}: {n:?}");
    assert_eq!(n.group, "X25519MLKEM768", "{who}: {n:?}");
}

/// Checks that sequence numbers of each stream are consecutive and start at a key frame.
fn assert_consecutive_from_keyframe(seen: &[Seen], mode: Mode) {
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    for s in seen {
        match last.get(&s.stream) {
            None => assert!(
                s.keyframe,
                "{mode}: stream {} starts at non-key frame {}",
                s.stream, s.seq
            ),
            Some(prev) => assert_eq!(
                s.seq,
                prev + 1,
                "{mode}: stream {} jumps from {prev} to {}",
                s.stream,
                s.seq
            ),
        }
        last.insert(s.stream, s.seq);
    }
}

#[test]
fn every_frame_arrives_whole_and_in_order() {
    block_on(async {
        for mode in MODES {
            let h = Harness::start(mode, cameras("720p", 4), DEFAULT_QUEUE_FRAMES).await;
            let ids = [0, 1, 2, 3];
            let (check, observed) = content_check(&h.cameras, h.start_ns);
            let viewer = h.start_viewer(h.viewer_config(&ids, Some(check)));

            // Steady state first: every stream has delivered its first key frame.
            let started = wait_until(PATIENCE, || {
                observed.lock().map(|o| o.streams()).unwrap_or(0) == ids.len()
            })
            .await;
            assert!(
                started,
                "{mode}: not every stream started: {:?}",
                viewer.metrics()
            );

            let win_start = h.open_window();
            tokio::time::sleep(Duration::from_millis(1200)).await;
            let win_end = h.close_window();
            let due = h.frames_due(&ids, win_start, win_end);
            assert!(due > 0);
            wait_until(PATIENCE, || {
                h.clock.now_ns() > win_end
                    && viewer.metrics().frames >= due
                    && h.recorder.stats().sent.frames_sent >= due
            })
            .await;

            let stats = h.recorder.stats();
            let (m, outcome) = viewer.stop().await;
            assert!(outcome.is_ok(), "{mode}: viewer ended with {outcome:?}");
            let observed = observed
                .lock()
                .map(|mut o| std::mem::take(&mut *o))
                .expect("lock");
            assert!(
                observed.problems.is_empty(),
                "{mode}: frames differ from what the cameras produce: {:#?}",
                observed.problems
            );
            assert_consecutive_from_keyframe(&observed.seen, mode);
            assert!(observed.seen.len() as u64 >= due);

            assert_eq!(
                m.frames, due,
                "{mode}: every frame due in the window arrived"
            );
            assert_eq!(m.frames, stats.sent.frames_sent, "{mode}: frames");
            assert_eq!(m.bytes, stats.sent.bytes_sent, "{mode}: bytes");
            assert_eq!(stats.sent.dropped_frames, 0, "{mode}: dropped");
            assert_eq!(m.sequence_gaps, 0, "{mode}: gaps");
            assert!(m.errors.is_empty(), "{mode}: {:?}", m.errors);
            assert!(stats.failures.is_empty(), "{mode}: {:?}", stats.failures);
            assert_eq!((m.connections, stats.connections), (1, 1), "{mode}");
            assert_eq!(m.latency_us.len(), due, "{mode}: one latency per frame");
            assert_eq!(
                m.ttff_us.len(),
                ids.len() as u64,
                "{mode}: one TTFF per stream"
            );
            match mode {
                Mode::Plain => {
                    assert!(m.negotiated.is_none() && stats.negotiated.is_none());
                    assert_eq!(stats.handshake_us.len(), 0);
                }
                Mode::Tls => {
                    assert_negotiated_tls13(m.negotiated.as_ref(), "viewer");
                    assert_negotiated_tls13(stats.negotiated.as_ref(), "recorder");
                    assert_eq!(stats.handshake_us.len(), 1);
                    assert_eq!(m.handshake_us.len(), 1);
                }
            }
            h.recorder.stop().await;
        }
    });
}

/// Starts a viewer and waits for it to give up on its own; returns how it ended.
async fn failed_viewer(h: &Harness, config: ViewerConfig) -> (ConnectError, BTreeMap<String, u64>) {
    let viewer = h.start_viewer(config);
    assert!(
        wait_until(PATIENCE, || viewer.is_finished()).await,
        "the viewer should fail on its own"
    );
    let (m, outcome) = viewer.stop().await;
    assert_eq!((m.frames, m.connections), (0, 0));
    match outcome {
        Err(ViewerError::Connect(e)) => (e, m.errors),
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[test]
fn untrusted_ca_and_wrong_host_are_refused_with_reasons() {
    block_on(async {
        let h = Harness::start(Mode::Tls, cameras("720p", 1), DEFAULT_QUEUE_FRAMES).await;
        let addr = h.recorder.addr();
        h.open_window();

        // A client that trusts another deployment's CA.
        let stranger = pki();
        let mut config = h.viewer_config(&[0], None);
        config.connector = connector(Mode::Tls, &stranger);
        let (e, errors) = failed_viewer(&h, config).await;
        assert_eq!(e.category, FailureCategory::UntrustedCa, "{e}");
        assert_eq!((e.host.as_str(), e.addr), (HOST, addr));
        assert!(
            e.message.contains("not issued by a CA this client trusts")
                && e.message
                    .contains("install the deployment's CA certificate"),
            "{e}"
        );
        let shown = e.to_string();
        assert!(
            shown.contains(HOST) && shown.contains(&addr.to_string()) && shown.contains(&e.message)
        );
        assert_eq!(errors, BTreeMap::from([("untrusted_ca".to_owned(), 1)]));

        // A client that trusts the right CA but dials another host name.
        let mut config = h.viewer_config(&[0], None);
        config.server.host = OTHER_HOST.to_owned();
        let (e, errors) = failed_viewer(&h, config).await;
        assert_eq!(e.category, FailureCategory::WrongHost, "{e}");
        assert_eq!(e.host, OTHER_HOST);
        assert!(
            e.message.contains("not valid for the host name") && e.message.contains(OTHER_HOST),
            "{e}"
        );
        assert!(e.to_string().contains(OTHER_HOST));
        assert_eq!(errors, BTreeMap::from([("wrong_host".to_owned(), 1)]));

        // The recorder saw both clients reject its certificate.
        let counted = wait_until(PATIENCE, || {
            h.recorder.stats().failures.values().sum::<u64>() >= 2
        })
        .await;
        let stats = h.recorder.stats();
        assert!(counted, "{:?}", stats.failures);
        assert_eq!(
            stats.failures,
            BTreeMap::from([("peer_rejected".to_owned(), 2)])
        );
        assert_eq!(stats.connections, 0);
        assert_eq!(stats.handshake_us.len(), 0);

        // A correct viewer afterwards is served normally.
        let viewer = h.start_viewer(h.viewer_config(&[0], None));
        let streaming = wait_until(PATIENCE, || viewer.metrics().frames >= 5).await;
        let (m, outcome) = viewer.stop().await;
        assert!(streaming, "{m:?}");
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(m.sequence_gaps, 0);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_negotiated_tls13(m.negotiated.as_ref(), "viewer");
        let stats = h.recorder.stats();
        assert_eq!(stats.connections, 1);
        assert_eq!(
            stats.failures,
            BTreeMap::from([("peer_rejected".to_owned(), 2)])
        );
        h.recorder.stop().await;
    });
}

#[test]
fn garbage_fails_only_that_connection() {
    block_on(async {
        for mode in MODES {
            let h = Harness::start(mode, cameras("720p", 2), DEFAULT_QUEUE_FRAMES).await;
            let addr = h.recorder.addr();
            let viewer = h.start_viewer(h.viewer_config(&[0, 1], None));
            let started = wait_until(PATIENCE, || viewer.metrics().ttff_us.len() == 2).await;
            assert!(started, "{mode}: {:?}", viewer.metrics());
            h.open_window();
            let healthy = wait_until(PATIENCE, || viewer.metrics().frames >= 5).await;
            assert!(healthy, "{mode}: {:?}", viewer.metrics());
            let before = viewer.metrics().frames;

            let mut expected: BTreeMap<String, u64> = BTreeMap::new();
            let mut expect =
                |category: &str| *expected.entry(category.to_owned()).or_default() += 1;
            let mut accepted = 1; // the healthy viewer

            // Requests refused with a reason, each on a connection of its own in the
            // connection's own mode: bytes that are not the protocol, a valid header
            // announcing a payload far above the request limit, and a subscription to a
            // camera this recorder does not have.
            for (request, reason, category) in [
                (garbage(), "bad magic", "protocol"),
                (huge_header(), "exceeds the maximum", "protocol"),
                (
                    subscribe_message(&[0, 999]).await,
                    "no camera 999",
                    "unknown_camera",
                ),
            ] {
                let mut c = RawClient::connect(&h.connector(), addr)
                    .await
                    .expect("connect");
                c.send_bytes(&request).await;
                let why = c.expect_refusal().await;
                assert!(why.contains(reason), "{mode}: {why}");
                c.expect_closed().await;
                expect(category);
                accepted += 1;
            }

            match mode {
                Mode::Plain => {
                    // TLS spoken to the plaintext port: the client's handshake fails, the
                    // recorder sees a bad header.
                    let tls = connector(Mode::Tls, &h.pki);
                    let e = RawClient::connect(&tls, addr)
                        .await
                        .expect_err("a TLS handshake with a plaintext port fails");
                    assert_eq!(e.category, FailureCategory::Protocol, "{e}");
                    expect("protocol");
                    accepted += 1;
                }
                Mode::Tls => {
                    // Garbage, and plaintext protocol, on the TLS port: the handshake fails.
                    for bytes in [garbage(), subscribe_message(&[0]).await] {
                        let mut c = RawClient::connect(&Connector::plain(), addr)
                            .await
                            .expect("TCP connect");
                        c.send_bytes(&bytes).await;
                        c.expect_closed().await;
                        expect("protocol");
                    }
                }
            }

            let total: u64 = expected.values().sum();
            let counted = wait_until(PATIENCE, || {
                h.recorder.stats().failures.values().sum::<u64>() >= total
            })
            .await;
            let stats = h.recorder.stats();
            assert!(counted, "{mode}: {:?}", stats.failures);
            assert_eq!(stats.failures, expected, "{mode}");
            assert_eq!(stats.connections, accepted, "{mode}");

            // The healthy viewer kept streaming through all of it, without a gap.
            let after = viewer.metrics().frames;
            let more = wait_until(PATIENCE, || viewer.metrics().frames >= after + 5).await;
            assert!(!viewer.is_finished(), "{mode}: the healthy viewer stopped");
            let (m, outcome) = viewer.stop().await;
            assert!(more && m.frames > before, "{mode}: {m:?}");
            assert!(outcome.is_ok(), "{mode}: {outcome:?}");
            assert_eq!(m.sequence_gaps, 0, "{mode}");
            assert!(m.errors.is_empty(), "{mode}: {:?}", m.errors);
            assert_eq!(h.recorder.stats().sent.dropped_frames, 0, "{mode}");
            h.recorder.stop().await;
        }
    });
}

#[test]
fn stalled_sender_shows_in_corrected_latency_only() {
    block_on(async {
        for mode in MODES {
            let h = Harness::start(mode, cameras("720p", 1), DEFAULT_QUEUE_FRAMES).await;
            let interval_ns = h.camera(0).profile.frame_interval_ns();
            let viewer = h.start_viewer(h.viewer_config(&[0], None));
            let started = wait_until(PATIENCE, || viewer.metrics().ttff_us.len() == 1).await;
            assert!(started, "{mode}: {:?}", viewer.metrics());

            let win_start = h.open_window();
            tokio::time::sleep(Duration::from_millis(200)).await;
            let stall = Duration::from_secs(1);
            h.recorder.stall(stall);
            tokio::time::sleep(stall + Duration::from_millis(300)).await;
            let win_end = h.close_window();
            let due = h.frames_due(&[0], win_start, win_end);
            wait_until(PATIENCE, || {
                h.clock.now_ns() > win_end && viewer.metrics().frames >= due
            })
            .await;

            let (m, outcome) = viewer.stop().await;
            let stats = h.recorder.stats();
            assert!(outcome.is_ok(), "{mode}: {outcome:?}");
            assert_eq!(
                stats.sent.dropped_frames, 0,
                "{mode}: the queue holds the stall"
            );
            assert_eq!(m.frames, due, "{mode}");
            assert_eq!(m.frames, stats.sent.frames_sent, "{mode}");
            assert_eq!(m.sequence_gaps, 0, "{mode}");

            // The first frame held back fell due at most one interval after the stall
            // began and went out when it ended: its corrected latency is at least the stall
            // less one interval (histogram values are upper bounds of their buckets).
            let floor_us = (stall.as_nanos() as u64 - interval_ns) / 1000;
            let worst = m.latency_us.value_at_quantile(1.0);
            assert!(
                worst >= floor_us,
                "{mode}: corrected max {worst} µs < {floor_us} µs"
            );
            assert!(m.latency_us.max() >= floor_us);
            // Frames due during the stall (≈ stall/interval of them) arrived late.
            let held = stall.as_nanos() as u64 / interval_ns;
            assert!(
                m.late_frames >= held / 2,
                "{mode}: {} late frames, ≈{held} held back",
                m.late_frames
            );
            // Uncorrected latency runs from the (post-stall) write and does not see it.
            let naive = m.uncorrected_latency_us.value_at_quantile(0.99);
            assert!(
                naive < 200_000,
                "{mode}: uncorrected p99 {naive} µs includes the stall"
            );
            assert!(m.uncorrected_latency_us.max() < worst);
            h.recorder.stop().await;
        }
    });
}

#[test]
fn a_clock_offset_distorts_latency_but_not_delay_variation() {
    // How far the two clocks disagree: far more than any delay on loopback.
    const OFFSET: Duration = Duration::from_secs(10);
    block_on(async {
        let base = RunClock::new();
        // (sender's clock, viewer's clock): the sender 10 s ahead, then 10 s behind.
        for (sender_clock, viewer_clock, ahead) in [
            (base.ahead_by(OFFSET), base, true),
            (base, base.ahead_by(OFFSET), false),
        ] {
            let pki = pki();
            let recorder_rt = RoleRuntime::new("recorder-1", 1).expect("recorder runtime");
            let viewer_rt = RoleRuntime::new("viewers", 1).expect("viewer runtime");
            let listener = listener(Mode::Tls, &pki).await;
            let window = Arc::new(Window::default());
            let cameras = cameras("720p", 1);
            let start_ns = sender_clock.now_ns() + crate::support::LEAD_NS;
            let config = RecorderConfig {
                host: HOST.to_owned(),
                cameras: cameras.clone(),
                queue_frames: DEFAULT_QUEUE_FRAMES,
                start_ns,
                source: Source::Pacer,
                timeouts: ServerTimeouts::default(),
            };
            let recorder =
                Recorder::start(&recorder_rt, listener, config, sender_clock, window.clone())
                    .expect("recorder start");
            let config = live_viewer(
                recorder.addr(),
                &cameras,
                connector(Mode::Tls, &pki),
                "viewer-recorder",
            );
            let viewer = Viewer::start(&viewer_rt, config, viewer_clock, window.clone());
            let started = wait_until(PATIENCE, || viewer.metrics().ttff_us.len() == 1).await;
            assert!(started, "ahead {ahead}: {:?}", viewer.metrics());

            // Frames count by when they were due, on the sender's schedule.
            let from = open_window(&sender_clock, &window);
            tokio::time::sleep(Duration::from_millis(700)).await;
            let to = close_window(&sender_clock, &window);
            let due = cameras[0].frames_due(Playback::Live, start_ns, from, to);
            wait_until(PATIENCE, || {
                sender_clock.now_ns() > to && viewer.metrics().frames >= due
            })
            .await;
            let (m, outcome) = viewer.stop().await;
            assert!(outcome.is_ok(), "ahead {ahead}: {outcome:?}");
            assert_eq!(m.frames, due, "ahead {ahead}");

            // Latency from the schedule takes the offset in full: a sender ahead makes
            // every frame seem early (read as 0), one behind makes every frame ≥ 10 s late.
            let offset_us = OFFSET.as_micros() as u64;
            if ahead {
                // 0 µs, in the histogram's lowest bucket (1 µs).
                assert!(m.latency_us.max() <= 1, "every frame seems early");
            } else {
                // (Histogram values are the lowest of their bucket.)
                let floor = m.latency_us.lowest_equivalent(offset_us);
                assert!(m.latency_us.min() >= floor, "{}", m.latency_us.min());
                assert_eq!(m.late_frames, due);
            }
            // The delay variation of every frame is counted, and the offset cancels out.
            assert_eq!(m.delay_variation_us.len(), due, "ahead {ahead}");
            let worst = m.delay_variation_us.max();
            assert!(worst < offset_us / 10, "ahead {ahead}: {worst} µs");
            recorder.stop().await;
        }
    });
}

#[test]
fn slow_viewer_is_dropped_until_next_keyframe_and_memory_stays_bounded() {
    block_on(async {
        for mode in MODES {
            // 20 MB/s: during the pause, three times what the socket buffers hold (about
            // 4 MB with the client's small receive buffer); and a queue of only 4 frames.
            let h = Harness::start(mode, cameras_of(flood_profile(), 2), 4).await;
            let ids = [0, 1];
            let by_id: BTreeMap<u32, Camera> =
                h.cameras.iter().map(|c| (c.id, c.clone())).collect();
            let mut c = RawClient::connect_small_window(mode, &h.pki, h.recorder.addr()).await;
            c.subscribe(&ids).await;

            let mut frames: Vec<Header> = Vec::new();
            let check = |hd: &Header, p: &[u8], frames: &mut Vec<Header>| {
                if let Some(problem) = frame_problem(&by_id, h.start_ns, hd, p) {
                    panic!("{mode}: {problem}");
                }
                frames.push(*hd);
            };
            let read = |r: Result<Option<(Header, Vec<u8>)>, WireError>| match r {
                Ok(Some(x)) => x,
                other => panic!("{mode}: stream ended: {other:?}"),
            };
            // Read until both streams have started.
            while frames
                .iter()
                .map(|f| f.stream_id)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                < ids.len()
            {
                let (hd, p) = read(
                    tokio::time::timeout(PATIENCE, c.read())
                        .await
                        .expect("first frames"),
                );
                check(&hd, &p, &mut frames);
            }

            let win_start = h.open_window();
            // Read nothing for a while: the socket buffers fill, then the queue.
            tokio::time::sleep(Duration::from_millis(700)).await;
            // The window ends a little after reading resumes.
            let win_end = h.clock.now_ns() + 300_000_000;
            h.window.close(win_end);
            // Read again until each stream has delivered a frame due after the window:
            // everything queued within it has then arrived.
            let mut past_end = std::collections::BTreeSet::new();
            while past_end.len() < ids.len() {
                let (hd, p) = read(
                    tokio::time::timeout(PATIENCE, c.read())
                        .await
                        .expect("frames"),
                );
                check(&hd, &p, &mut frames);
                if hd.scheduled_ns >= win_end {
                    past_end.insert(hd.stream_id);
                }
            }
            let stats = h.recorder.stats();
            drop(c);

            assert!(
                stats.sent.dropped_frames > 0,
                "{mode}: nothing was dropped for a viewer that read nothing: {:?}",
                stats.sent
            );
            // Every frame due in the window was either sent or dropped: none is held
            // anywhere else, however long the viewer does not read.
            let due = h.frames_due(&ids, win_start, win_end);
            assert_eq!(
                stats.sent.frames_sent + stats.sent.dropped_frames,
                due,
                "{mode}: {:?}",
                stats.sent
            );
            let in_window: Vec<&Header> = frames
                .iter()
                .filter(|f| f.scheduled_ns >= win_start && f.scheduled_ns < win_end)
                .collect();
            assert_eq!(in_window.len() as u64, stats.sent.frames_sent, "{mode}");
            assert_eq!(
                in_window
                    .iter()
                    .map(|f| u64::from(f.payload_len))
                    .sum::<u64>(),
                stats.sent.bytes_sent,
                "{mode}"
            );

            // Drop until the next key frame: a stream only ever resumes at a key frame.
            let mut last: BTreeMap<u32, u64> = BTreeMap::new();
            let mut gaps = 0;
            for f in &frames {
                match last.get(&f.stream_id) {
                    None => assert!(
                        f.is_keyframe(),
                        "{mode}: stream {} starts at a P-frame",
                        f.stream_id
                    ),
                    Some(prev) => {
                        assert!(f.seq > *prev, "{mode}: stream {} goes back", f.stream_id);
                        if f.seq != prev + 1 {
                            gaps += f.seq - prev - 1;
                            assert!(
                                f.is_keyframe(),
                                "{mode}: stream {} resumes at P-frame {} after {prev}",
                                f.stream_id,
                                f.seq
                            );
                        }
                    }
                }
                last.insert(f.stream_id, f.seq);
            }
            assert!(gaps > 0, "{mode}: drops must show as gaps");
            assert!(
                gaps >= stats.sent.dropped_frames,
                "{mode}: {gaps} < {:?}",
                stats.sent
            );
            h.recorder.stop().await;
        }
    });
}

#[test]
fn bulk_sender_streams_unpaced_frames() {
    const FRAME: usize = 64 * 1024;
    block_on(async {
        for mode in MODES {
            let pki = pki();
            let clock = RunClock::new();
            let window = Arc::new(Window::default());
            let sender_rt = RoleRuntime::new("bulk", 1).expect("runtime");
            let viewer_rt = RoleRuntime::new("viewers", 1).expect("runtime");
            let listener = listener(mode, &pki).await;
            let bulk = BulkSender::start(&sender_rt, listener, FRAME, clock, window.clone())
                .expect("bulk sender");
            let config = ViewerConfig {
                server: Endpoint {
                    addr: bulk.addr(),
                    host: HOST.to_owned(),
                },
                failover: None,
                label: "bulk".to_owned(),
                streams: vec![StreamRequest {
                    camera: 0,
                    interval_ns: u64::MAX,
                }],
                playback: Playback::Live,
                connector: connector(mode, &pki),
                on_frame: Some(Arc::new(|h: &Header, p: &[u8]| {
                    assert_eq!(p.len(), FRAME);
                    assert_eq!(h.payload_len as usize, FRAME);
                    assert_eq!((h.kind, h.stream_id), (Kind::Frame, 0));
                })),
                on_header: None,
                verify: None,
                meter: None,
                start_at_ns: None,
            };
            let viewer = Viewer::start(&viewer_rt, config, clock, window.clone());
            let connected = wait_until(PATIENCE, || viewer.metrics().connections == 1).await;
            assert!(connected, "{mode}: {:?}", viewer.metrics());

            open_window(&clock, &window);
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let end = close_window(&clock, &window);
            // Drained when the viewer has read every frame sent in the window, twice in a row.
            let mut previous = None;
            wait_until(PATIENCE, || {
                let now = (viewer.metrics().frames, bulk.stats().0.frames_sent);
                let done = clock.now_ns() > end && now.0 == now.1 && previous == Some(now);
                previous = Some(now);
                done
            })
            .await;

            assert!(!viewer.is_finished(), "{mode}: the viewer stopped");
            let (sent, failures) = bulk.stats();
            assert!(failures.is_empty(), "{mode}: {failures:?}");
            let (m, outcome) = viewer.stop().await;
            assert!(outcome.is_ok(), "{mode}: {outcome:?}");
            assert!(m.frames > 0, "{mode}");
            assert_eq!(m.bytes, m.frames * FRAME as u64, "{mode}");
            assert_eq!(m.frames, sent.frames_sent, "{mode}");
            assert_eq!(m.bytes, sent.bytes_sent, "{mode}");
            assert_eq!(m.sequence_gaps, 0, "{mode}");
            assert_eq!(m.late_frames, 0, "{mode}: no lateness threshold");
            assert!(m.errors.is_empty(), "{mode}: {:?}", m.errors);
            assert_eq!(m.connections, 1);
            match mode {
                Mode::Plain => assert!(m.negotiated.is_none()),
                Mode::Tls => assert_negotiated_tls13(m.negotiated.as_ref(), "viewer"),
            }
            bulk.stop().await;
        }
    });
}

/// A bulk sender on 127.0.0.1:0 in `mode`, with its runtime.
async fn start_bulk(mode: Mode, pki: &Pki, frame_size: usize) -> (BulkSender, RoleRuntime) {
    let rt = RoleRuntime::new("bulk", 1).expect("runtime");
    let listener = listener(mode, pki).await;
    let window = Arc::new(Window::default());
    window.open(0);
    let bulk =
        BulkSender::start(&rt, listener, frame_size, RunClock::new(), window).expect("bulk sender");
    (bulk, rt)
}

#[test]
fn stopping_does_not_wait_on_a_client_that_stopped_reading() {
    block_on(async {
        for mode in MODES {
            let h = Harness::start(mode, cameras_of(flood_profile(), 2), 4).await;
            let mut c = RawClient::connect_small_window(mode, &h.pki, h.recorder.addr()).await;
            c.subscribe(&[0, 1]).await;
            let (bulk, _bulk_rt) = start_bulk(mode, &h.pki, 64 * 1024).await;
            let mut b = RawClient::connect_small_window(mode, &h.pki, bulk.addr()).await;
            b.subscribe(&[0]).await;
            // Read nothing until the recorder has had to drop frames: its writer is then
            // blocked on a full socket. The bulk sender's is blocked long before.
            h.open_window();
            let blocked = wait_until(PATIENCE, || h.recorder.stats().sent.dropped_frames > 0).await;
            assert!(blocked, "{mode}: {:?}", h.recorder.stats().sent);
            let mut last = bulk.stats().0.frames_sent;
            let stuck = wait_until(PATIENCE, || {
                let now = bulk.stats().0.frames_sent;
                let same = now == last && now > 0;
                last = now;
                same
            })
            .await;
            assert!(stuck, "{mode}: the bulk sender never blocked");
            // Stopping must not depend on the clients: they are let go, not waited for.
            let (recorder, sender) = tokio::join!(
                tokio::time::timeout(PATIENCE, h.recorder.stop()),
                tokio::time::timeout(PATIENCE, bulk.stop()),
            );
            assert!(
                recorder.is_ok(),
                "{mode}: Recorder::stop still waiting after {PATIENCE:?} on a client that does not read"
            );
            assert!(
                sender.is_ok(),
                "{mode}: BulkSender::stop still waiting after {PATIENCE:?} on a client that does not read"
            );
            drop((c, b));
        }
    });
}

#[test]
fn stopping_does_not_wait_for_a_silent_client() {
    block_on(async {
        for mode in MODES {
            let h = Harness::start(mode, cameras("sub", 1), DEFAULT_QUEUE_FRAMES).await;
            let (bulk, _bulk_rt) = start_bulk(mode, &h.pki, 64 * 1024).await;
            // Connected (and, for TLS, handshaken), then silent: no subscribe request.
            let c = RawClient::connect(&h.connector(), h.recorder.addr())
                .await
                .expect("connect");
            let b = RawClient::connect(&h.connector(), bulk.addr())
                .await
                .expect("connect");
            let accepted = wait_until(PATIENCE, || h.recorder.stats().connections == 1).await;
            assert!(accepted, "{mode}");
            // Stopping is a cancellation: it must not sit out the 10 s subscribe timeout
            // (ServerTimeouts::first_request), so half of that is plenty.
            let limit = Duration::from_secs(5);
            let (recorder, sender) = tokio::join!(
                tokio::time::timeout(limit, h.recorder.stop()),
                tokio::time::timeout(limit, bulk.stop()),
            );
            assert!(
                recorder.is_ok(),
                "{mode}: Recorder::stop waited for a silent client"
            );
            assert!(
                sender.is_ok(),
                "{mode}: BulkSender::stop waited for a silent client"
            );
            drop((c, b));
        }
    });
}

/// Names of this process's threads (Linux truncates them to 15 bytes).
fn thread_names() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim_end().to_owned())
        .collect()
}

#[test]
fn a_dropped_recorder_does_not_leave_its_pacer_running() {
    block_on(async {
        // A runtime name of this test's own: its (one) pacer thread is "rec-drop-pacer0".
        let pacer = "rec-drop-pacer0";
        let rt = RoleRuntime::new("rec-drop", 1).expect("runtime");
        let pki = pki();
        let config = RecorderConfig {
            host: HOST.to_owned(),
            cameras: cameras("sub", 1),
            queue_frames: DEFAULT_QUEUE_FRAMES,
            start_ns: 0,
            source: Source::Pacer,
            timeouts: ServerTimeouts::default(),
        };
        let recorder = Recorder::start(
            &rt,
            listener(Mode::Plain, &pki).await,
            config,
            RunClock::new(),
            Arc::new(Window::default()),
        )
        .expect("recorder");
        let running = wait_until(PATIENCE, || thread_names().iter().any(|n| n == pacer)).await;
        assert!(running, "no thread named {pacer}: {:?}", thread_names());
        // Dropped without stop(), as on an early return or a panic.
        drop(recorder);
        drop(rt);
        let gone = wait_until(Duration::from_secs(3), || {
            !thread_names().iter().any(|n| n == pacer)
        })
        .await;
        assert!(gone, "the pacer of a dropped recorder is still running");
    });
}
