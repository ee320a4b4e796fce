//! A recording server's certificate over its lifetime, while it streams: renewed without a
//! restart (new connections see the new certificate, the established viewer loses nothing),
//! and expiring mid-run (new full handshakes fail as expired, the established stream goes
//! on, a client resuming a TLS 1.3 session from before the expiry still gets in; putting a
//! valid certificate in place recovers without a restart).
//!
//! Real TLS over real sockets on 127.0.0.1:0. Assertions are about correctness (which
//! certificate, which failure, every frame due); none bounds how fast anything runs.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use simulators::clock::RunClock;
use simulators::metrics::Window;
use simulators::pki::{HostIdentity, KeyType, Pki, ReloadableIdentity, Validity};
use simulators::role::recorder::{Recorder, DEFAULT_QUEUE_FRAMES};
use simulators::role::viewer::Viewer;
use simulators::role::RoleRuntime;
use simulators::transport::{
    ConnectError, Connector, FailureCategory, Listener, Mode, TlsSettings,
};
use simulators::video::{Camera, Playback};
use tokio::io::AsyncWriteExt;

use crate::support::{
    block_on, cameras, close_window, connector, live_viewer, localhost, open_window, wait_until,
    Recording, HOST, PATIENCE,
};

/// The cameras the viewer watches.
const IDS: [u32; 4] = [0, 1, 2, 3];

/// A TLS recording server whose certificate can be replaced, a viewer runtime, one clock.
struct Harness {
    clock: RunClock,
    window: Arc<Window>,
    pki: Pki,
    identity: Arc<ReloadableIdentity>,
    cameras: Vec<Camera>,
    start_ns: u64,
    recorder: Recorder,
    viewer_rt: RoleRuntime,
    _recorder_rt: RoleRuntime,
}

impl Harness {
    /// Starts a recording server on 127.0.0.1:0 presenting `first` (issued by `pki`'s CA)
    /// through a reloadable identity.
    async fn start(pki: Pki, first: &HostIdentity) -> Harness {
        let (server_config, identity) = first
            .server_config_reloadable(&TlsSettings::default())
            .expect("reloadable server config");
        assert_eq!(identity.serial_hex(), first.serial_hex());
        assert_eq!(identity.replacements(), 0);
        let recorder_rt = RoleRuntime::new("recorder-1", 1).expect("recorder runtime");
        let viewer_rt = RoleRuntime::new("viewers", 1).expect("viewer runtime");
        let listener = Listener::bind(localhost(), Some(server_config))
            .await
            .expect("bind 127.0.0.1:0");
        let Recording {
            clock,
            window,
            cameras,
            start_ns,
            recorder,
            rt: recorder_rt,
        } = Recording::start(
            recorder_rt,
            listener,
            cameras("720p", IDS.len() as u32),
            DEFAULT_QUEUE_FRAMES,
        );
        Harness {
            clock,
            window,
            pki,
            identity,
            cameras,
            start_ns,
            recorder,
            viewer_rt,
            _recorder_rt: recorder_rt,
        }
    }

    /// A connector trusting the deployment's CA, with a resumption store of its own: its
    /// first connection is a full handshake, which is where a certificate is presented.
    fn fresh_connector(&self) -> Connector {
        connector(Mode::Tls, &self.pki)
    }

    /// Starts a live viewer of every camera and waits until each stream has delivered its
    /// first key frame.
    async fn start_viewer(&self) -> Viewer {
        let config = live_viewer(
            self.recorder.addr(),
            &self.cameras,
            self.fresh_connector(),
            "viewer-recorder",
        );
        let viewer = Viewer::start(&self.viewer_rt, config, self.clock, self.window.clone());
        let started = wait_until(PATIENCE, || {
            viewer.metrics().ttff_us.len() == self.cameras.len() as u64
        })
        .await;
        assert!(started, "not every stream started: {:?}", viewer.metrics());
        viewer
    }

    /// Connects a new client, returns the serial number of the certificate the server
    /// presented and that certificate, and leaves politely (close_notify, so the recorder
    /// sees a client that left rather than a broken connection).
    async fn probe(&self) -> Result<(String, Vec<u8>), ConnectError> {
        let (resumed, leaf) = self.visit(&self.fresh_connector()).await?;
        assert!(!resumed, "a fresh client resumed");
        let serial = serial_hex_of(&leaf).expect("a parsable certificate");
        Ok((serial, leaf))
    }

    /// Connects with `connector`, stays long enough to take the session tickets the
    /// server sends after the handshake, and leaves politely. Returns whether the session
    /// was resumed and the leaf certificate (remembered from the original handshake when
    /// resumed).
    async fn visit(&self, connector: &Connector) -> Result<(bool, Vec<u8>), ConnectError> {
        let mut connected = connector.connect(self.recorder.addr(), HOST).await?;
        let negotiated = connected.negotiated.clone().expect("TLS parameters");
        let leaf = connected
            .peer_certificates()
            .and_then(|chain| chain.first())
            .expect("the server presented a certificate")
            .to_vec();
        // No frames come before a subscription: reading only processes the tickets.
        let mut buf = [0u8; 64];
        let _ = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::io::AsyncReadExt::read(&mut connected.stream, &mut buf),
        )
        .await;
        let _ = tokio::time::timeout(PATIENCE, connected.stream.shutdown()).await;
        Ok((negotiated.resumed, leaf))
    }

    /// Opens the window a little ahead of now; returns its start.
    fn open_window(&self) -> u64 {
        open_window(&self.clock, &self.window)
    }

    /// Closes the window a little ahead of now; returns its end.
    fn close_window(&self) -> u64 {
        close_window(&self.clock, &self.window)
    }

    /// Frames of every camera that fall due in `[from, to)`.
    fn frames_due(&self, from: u64, to: u64) -> u64 {
        self.cameras
            .iter()
            .map(|c| c.frames_due(Playback::Live, self.start_ns, from, to))
            .sum()
    }

    /// The run-clock instant of a wall-clock time (now if it has passed).
    fn run_clock_at(&self, t: SystemTime) -> u64 {
        let ahead = t
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        self.clock.now_ns() + ahead.as_nanos() as u64
    }

    /// Waits until every frame due in the window has been received (or `PATIENCE` passes).
    async fn drain(&self, viewer: &Viewer, due: u64, win_end: u64) {
        wait_until(PATIENCE, || {
            self.clock.now_ns() > win_end
                && viewer.metrics().frames >= due
                && self.recorder.stats().sent.frames_sent >= due
        })
        .await;
    }
}

/// The serial number of a DER certificate, lowercase hex as [`HostIdentity::serial_hex`]
/// prints it: `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
/// serialNumber INTEGER, … }, … }`.
fn serial_hex_of(der: &[u8]) -> Option<String> {
    /// One DER tag-length-value: (tag, value, what follows).
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, b) = b.split_first()?;
        let (&first, mut b) = b.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let (len, rest) = b.split_at_checked(n)?;
            b = rest;
            len.iter()
                .fold(0usize, |acc, x| (acc << 8) | usize::from(*x))
        };
        let (value, rest) = b.split_at_checked(len)?;
        Some((tag, value, rest))
    }
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, tbs, _) = tlv(cert)? else {
        return None;
    };
    let (mut tag, mut value, rest) = tlv(tbs)?;
    if tag == 0xa0 {
        (tag, value, _) = tlv(rest)?;
    }
    (tag == 0x02).then(|| value.iter().map(|b| format!("{b:02x}")).collect())
}

#[test]
fn renewed_certificate_reaches_new_connections_and_the_established_viewer_loses_nothing() {
    block_on(async {
        let pki = Pki::generate(&[HOST], KeyType::EcdsaP256, 30).expect("PKI");
        let first = pki.host(HOST).expect("identity").clone();
        let h = Harness::start(pki, &first).await;
        let viewer = h.start_viewer().await;

        let (serial, leaf) = h.probe().await.expect("handshake before the renewal");
        assert_eq!(serial, first.serial_hex());
        assert_eq!(leaf, first.chain()[0].to_vec());

        // The window spans the renewal: streaming before, the swap, streaming after.
        let win_start = h.open_window();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let renewed = h
            .pki
            .ca
            .issue(HOST, &[], KeyType::EcdsaP256, Validity::days_from_now(90))
            .expect("renewed certificate");
        assert_ne!(renewed.serial_hex(), first.serial_hex());
        h.identity.replace(&renewed).expect("replace");
        assert_eq!(h.identity.serial_hex(), renewed.serial_hex());
        assert_eq!(h.identity.replacements(), 1);
        assert_eq!(h.identity.current().cert[0], renewed.chain()[0]);

        // New connections are shown the new certificate, at once and every time.
        for _ in 0..2 {
            let (serial, leaf) = h.probe().await.expect("handshake after the renewal");
            assert_eq!(
                serial,
                renewed.serial_hex(),
                "a new client saw the old certificate"
            );
            assert_eq!(leaf, renewed.chain()[0].to_vec());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let win_end = h.close_window();
        let due = h.frames_due(win_start, win_end);
        assert!(due > 0);
        h.drain(&viewer, due, win_end).await;

        let stats = h.recorder.stats();
        let (m, outcome) = viewer.stop().await;
        assert!(outcome.is_ok(), "the viewer ended with {outcome:?}");
        assert_eq!(m.frames, due, "every frame due across the renewal arrived");
        assert_eq!(m.sequence_gaps, 0, "gaps");
        assert_eq!(stats.sent.dropped_frames, 0, "dropped");
        assert_eq!(m.frames, stats.sent.frames_sent);
        assert_eq!(m.bytes, stats.sent.bytes_sent);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert!(stats.failures.is_empty(), "{:?}", stats.failures);
        // One connection for the viewer, which never reconnected; three probes.
        assert_eq!(m.connections, 1);
        assert_eq!(stats.connections, 4);
        h.recorder.stop().await;
    });
}

#[test]
fn expiry_mid_run_fails_new_handshakes_only_and_a_new_certificate_recovers() {
    block_on(async {
        let pki = Pki::generate(&[HOST], KeyType::EcdsaP256, 30).expect("PKI");
        // Valid until a few seconds from now. Certificates carry whole seconds, so it
        // really ends up to a second earlier.
        let now = SystemTime::now();
        let short = Validity {
            not_before: now - Duration::from_secs(3600),
            not_after: now + Duration::from_secs(5),
        };
        let expiring = pki
            .ca
            .issue(HOST, &[], KeyType::EcdsaP256, short)
            .expect("a certificate expiring in seconds");
        let h = Harness::start(pki, &expiring).await;
        let viewer = h.start_viewer().await;
        assert!(
            SystemTime::now() < short.not_after - Duration::from_secs(2),
            "setting up took too long to test before the expiry"
        );
        let (serial, _) = h.probe().await.expect("handshake before the expiry");
        assert_eq!(serial, expiring.serial_hex());
        // A client that will come back: it keeps its TLS 1.3 session tickets.
        let returning = h.fresh_connector();
        let (resumed, _) = h.visit(&returning).await.expect("first visit");
        assert!(!resumed);

        // The window spans the expiry instant.
        let win_start = h.open_window();
        let expired_at = h.run_clock_at(short.not_after);
        let past = short.not_after + Duration::from_millis(1100);
        while SystemTime::now() < past {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let e = h
            .probe()
            .await
            .expect_err("a new handshake with an expired certificate");
        assert_eq!(e.category, FailureCategory::Expired, "{e}");
        assert!(e.message.contains("has expired"), "{e}");
        assert!(e.to_string().contains(HOST), "{e}");
        // Only full handshakes look at the certificate: the returning client resumes its
        // session from before the expiry and is let in without being shown one.
        let (resumed, leaf) = h.visit(&returning).await.expect("a resumed session");
        assert!(resumed, "the returning client did not resume");
        assert_eq!(leaf, expiring.chain()[0].to_vec());
        // The recorder counts the client's rejection; its viewer is untouched.
        let counted = wait_until(PATIENCE, || {
            h.recorder.stats().failures.get("peer_rejected") == Some(&1)
        })
        .await;
        assert!(counted, "{:?}", h.recorder.stats().failures);

        tokio::time::sleep(Duration::from_millis(500)).await;
        let win_end = h.close_window();
        assert!(win_end > expired_at + 1_000_000_000);
        let due = h.frames_due(win_start, win_end);
        let due_after_expiry = h.frames_due(expired_at, win_end);
        assert!(due_after_expiry > 0 && due > due_after_expiry);
        h.drain(&viewer, due, win_end).await;
        let m = viewer.metrics();
        assert!(!viewer.is_finished(), "the viewer stopped: {m:?}");
        assert_eq!(
            m.frames, due,
            "the established stream lost frames across the expiry"
        );
        assert_eq!(m.sequence_gaps, 0);
        assert_eq!(h.recorder.stats().sent.dropped_frames, 0);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_eq!(m.connections, 1);

        // Renewing in place recovers: no restart, the viewer still streaming.
        let renewed = h
            .pki
            .ca
            .issue(HOST, &[], KeyType::EcdsaP256, Validity::days_from_now(90))
            .expect("renewed certificate");
        h.identity.replace(&renewed).expect("replace");
        let (serial, _) = h.probe().await.expect("handshake after the renewal");
        assert_eq!(serial, renewed.serial_hex());
        // …and the viewer streams on through a second window, still without a gap.
        let win2_start = h.open_window();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let win2_end = h.close_window();
        let due2 = h.frames_due(win2_start, win2_end);
        h.drain(&viewer, due + due2, win2_end).await;

        let stats = h.recorder.stats();
        let (m, outcome) = viewer.stop().await;
        assert!(outcome.is_ok(), "the viewer ended with {outcome:?}");
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_eq!(
            (m.frames, m.sequence_gaps, m.connections),
            (due + due2, 0, 1)
        );
        assert_eq!(
            stats.failures,
            std::collections::BTreeMap::from([("peer_rejected".to_owned(), 1)])
        );
        // The viewer, the probes before the expiry and after the renewal, and the
        // returning client's two visits (the second one after the expiry).
        assert_eq!(stats.connections, 5);
        h.recorder.stop().await;
    });
}

#[test]
fn a_replacement_may_change_the_key_type_and_debug_output_hides_keys() {
    let pki = Pki::generate(&[HOST], KeyType::EcdsaP256, 30).expect("PKI");
    let first = pki.host(HOST).expect("identity");
    let identity =
        ReloadableIdentity::new(first, &TlsSettings::default()).expect("reloadable identity");
    let rsa = pki
        .ca
        .issue(HOST, &[], KeyType::Rsa2048, Validity::days_from_now(1))
        .expect("RSA certificate");
    identity.replace(&rsa).expect("an RSA identity loads");
    assert_eq!(identity.serial_hex(), rsa.serial_hex());
    assert_eq!(identity.validity(), rsa.validity());
    assert_eq!(identity.host(), HOST);
    assert_eq!(identity.current().cert, rsa.chain());
    let shown = format!("{identity:?}");
    assert!(shown.contains("redacted") && shown.contains(&rsa.serial_hex()));
    assert!(!shown.contains("PRIVATE KEY"));
    // Unknown hosts are refused by the PKI as for a fixed configuration.
    assert!(pki
        .server_config_reloadable("nowhere.vms.test", &TlsSettings::default())
        .is_err());
}
