//! Interoperability with a TLS stack vmsbench did not write: the `openssl s_client`
//! command completes handshakes with a running simulated recording server, trusting only
//! the CA vmsbench generated, and refuses (or is refused) where it should be.
//!
//! Real TLS over real sockets on 127.0.0.1:0. The recording server runs on a role runtime
//! of its own; openssl runs as a child process of the test thread, with stdin empty (so it
//! ends after the handshake) and a hang guard. Assertions are about outcomes and what
//! openssl prints; none bounds how fast anything runs.
//!
//! When /usr/bin/openssl is absent every test says so plainly and passes without checking.

use std::collections::BTreeMap;
use std::io::{Read, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use simulators::pki::{KeyType, Pki};
use simulators::role::recorder::{Recorder, DEFAULT_QUEUE_FRAMES};
use simulators::role::viewer::Viewer;
use simulators::role::RoleRuntime;
use simulators::transport::{Cipher, Connector, KxGroup, Listener, TlsSettings, TlsVersion};

use crate::support::{cameras, live_viewer, localhost, open_window, Recording, HOST, PATIENCE};

const OPENSSL: &str = "/usr/bin/openssl";
const OTHER_HOST: &str = "other.vms.test";
/// How long one openssl run may take before it counts as hung and is killed. Well above
/// the recording server's 10 s subscribe timeout, so a client that waits for the server to
/// hang up still finishes.
const OPENSSL_LIMIT: Duration = Duration::from_secs(30);

/// Writes a note that shows even when the test harness captures output (it captures only
/// the print macros).
fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "NOTE: {text}");
}

/// Whether openssl is installed; if not, says plainly that `test` is skipped.
fn openssl_present(test: &str) -> bool {
    if Path::new(OPENSSL).exists() {
        return true;
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPING {test}: openssl is not installed ({OPENSSL} is absent)"
    );
    false
}

/// What one `openssl s_client` run did.
#[derive(Debug)]
struct Run {
    success: bool,
    code: Option<i32>,
    /// stdout then stderr.
    text: String,
}

impl Run {
    fn has_line(&self, line: &str) -> bool {
        self.text.lines().any(|l| l.trim() == line)
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "openssl s_client exited with {:?}; output:\n{}",
            self.code, self.text
        )
    }
}

/// Reads a child's pipe to the end on a thread of its own, so that neither pipe can fill
/// and block the child while the other is read.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `openssl s_client -connect addr` with `args` and stdin empty; kills it and fails
/// the test if it is still running after [`OPENSSL_LIMIT`].
fn s_client(addr: SocketAddr, args: &[&str]) -> Run {
    let connect = addr.to_string();
    let mut child = Command::new(OPENSSL)
        .args(["s_client", "-connect", &connect])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start openssl s_client");
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + OPENSSL_LIMIT;
    let status = loop {
        match child.try_wait().expect("wait for openssl") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "openssl s_client {args:?} still running after {OPENSSL_LIMIT:?}; killed it"
                );
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let text = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    Run {
        success: status.success(),
        code: status.code(),
        text,
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether it held.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// TLS 1.3 and 1.2, AES-256-GCM, and X25519 after vmsbench's default X25519MLKEM768.
///
/// The default settings offer only the post-quantum hybrid group X25519MLKEM768, which
/// openssl supports from 3.5 on; older openssl (3.0 on this project's machines) offers
/// classical groups only, so X25519 is added for it to have a group in common.
fn interop_settings() -> TlsSettings {
    TlsSettings {
        versions: vec![TlsVersion::Tls13, TlsVersion::Tls12],
        ciphers: vec![Cipher::Aes256Gcm],
        groups: vec![KxGroup::X25519mlkem768, KxGroup::X25519],
    }
}

/// A TLS recording server on 127.0.0.1:0 with its own runtime, and the CA that issued its
/// certificate written where openssl can read it.
struct Server {
    pki: Pki,
    settings: TlsSettings,
    recording: Recording,
    dir: tempfile::TempDir,
    ca_file: PathBuf,
}

impl Server {
    fn start(settings: TlsSettings) -> Server {
        let pki = Pki::generate(&[HOST], KeyType::Rsa2048, 30).expect("PKI generation");
        let dir = tempfile::tempdir().expect("temporary directory");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, pki.ca.root_cert_pem()).expect("write ca.pem");
        let rt = RoleRuntime::new("rec-interop", 1).expect("recorder runtime");
        let config = pki.server_config(HOST, &settings).expect("server config");
        // Bound on the recorder's runtime, whose own threads drive its sockets: the test
        // thread is free to block on openssl.
        let listener = rt
            .handle()
            .block_on(Listener::bind(localhost(), Some(config)))
            .expect("bind 127.0.0.1:0");
        let recording = Recording::start(rt, listener, cameras("720p", 1), DEFAULT_QUEUE_FRAMES);
        Server {
            pki,
            settings,
            recording,
            dir,
            ca_file,
        }
    }

    fn recorder(&self) -> &Recorder {
        &self.recording.recorder
    }

    fn addr(&self) -> SocketAddr {
        self.recorder().addr()
    }

    fn ca(&self) -> String {
        self.ca_file.to_str().expect("UTF-8 path").to_owned()
    }

    /// The CA certificate of another, freshly generated PKI, written next to ours.
    fn stranger_ca(&self) -> String {
        let other = Pki::generate(&[HOST], KeyType::Rsa2048, 30).expect("PKI generation");
        let path = self.dir.path().join("other-ca.pem");
        std::fs::write(&path, other.ca.root_cert_pem()).expect("write other-ca.pem");
        path.to_str().expect("UTF-8 path").to_owned()
    }

    fn failures(&self) -> BTreeMap<String, u64> {
        self.recorder().stats().failures
    }

    /// Waits until the server has counted `n` failed connections in all; returns them.
    fn failures_once(&self, n: u64) -> BTreeMap<String, u64> {
        let counted = wait_until(PATIENCE, || self.failures().values().sum::<u64>() >= n);
        let failures = self.failures();
        assert!(counted, "expected {n} failed connections, saw {failures:?}");
        failures
    }

    /// A live TLS viewer of camera 0 on a runtime of its own, trusting our CA.
    fn viewer(&self, rt: &RoleRuntime) -> Viewer {
        let r = &self.recording;
        let config = live_viewer(
            self.addr(),
            &r.cameras[..1],
            Connector::tls(
                self.pki
                    .client_config(&self.settings)
                    .expect("client config"),
            ),
            "viewer-interop",
        );
        Viewer::start(rt, config, r.clock, r.window.clone())
    }

    /// Opens the recorder's measurement window.
    fn open_window(&self) {
        open_window(&self.recording.clock, &self.recording.window);
    }

    fn stop(self) {
        let Recording { recorder, rt, .. } = self.recording;
        rt.handle().block_on(recorder.stop());
    }
}

/// The arguments of a verifying handshake: SNI for [`HOST`], the certificate checked
/// against `host` and trusted only through `ca`, any verification error fatal, and the
/// brief summary printed.
fn verifying<'a>(host: &'a str, ca: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "-servername",
        HOST,
        "-verify_hostname",
        host,
        "-CAfile",
        ca,
        "-verify_return_error",
        "-brief",
    ];
    args.extend_from_slice(extra);
    args
}

/// Checks a successful handshake with our CA and host name: openssl's brief summary
/// names `version` and `suite` and says the certificate verified for [`HOST`].
fn assert_handshake(run: &Run, version: &str, suite: &str) {
    assert!(run.success, "{run}");
    for line in [
        "CONNECTION ESTABLISHED".to_owned(),
        format!("Protocol version: {version}"),
        format!("Ciphersuite: {suite}"),
        "Verification: OK".to_owned(),
        format!("Verified peername: {HOST}"),
    ] {
        assert!(run.has_line(&line), "no line {line:?}: {run}");
    }
}

/// Checks a handshake openssl abandoned because the certificate failed `verify_error`.
fn assert_verify_failed(run: &Run, verify_error: &str) {
    assert!(!run.success, "openssl accepted the certificate: {run}");
    assert!(
        run.text.contains(verify_error),
        "expected {verify_error:?}: {run}"
    );
    assert!(run.text.contains("certificate verify failed"), "{run}");
    assert!(!run.has_line("CONNECTION ESTABLISHED"), "{run}");
}

/// Waits until the server has accepted `n` connections.
fn assert_accepted(server: &Server, n: u64) {
    let accepted = wait_until(PATIENCE, || server.recorder().stats().connections >= n);
    let stats = server.recorder().stats();
    assert!(accepted, "expected {n} accepted connections: {stats:?}");
    assert_eq!(stats.connections, n);
}

/// The key-exchange groups openssl may settle on with [`interop_settings`]: X25519 for
/// openssl before 3.5, the hybrid for later ones.
const INTEROP_GROUPS: [&str; 2] = ["X25519", "X25519MLKEM768"];

#[test]
fn openssl_completes_a_tls13_handshake_trusting_the_vmsbench_ca() {
    if !openssl_present("openssl_completes_a_tls13_handshake_trusting_the_vmsbench_ca") {
        return;
    }
    let server = Server::start(interop_settings());
    let ca = server.ca();
    let run = s_client(server.addr(), &verifying(HOST, &ca, &["-tls1_3"]));
    assert_handshake(&run, "TLSv1.3", "TLS_AES_256_GCM_SHA384");

    // The server saw the same handshake, and openssl's clean close is no failure.
    assert_accepted(&server, 1);
    let n = server.recorder().stats().negotiated.expect("negotiated");
    assert_eq!(
        (n.version.as_str(), n.suite.as_str()),
        ("TLSv1_3", "TLS13_AES_256_GCM_SHA384"),
        "{n:?}"
    );
    assert!(INTEROP_GROUPS.contains(&n.group.as_str()), "{n:?}");
    assert!(server.failures().is_empty(), "{:?}", server.failures());
    server.stop();
}

#[test]
fn openssl_completes_a_tls12_handshake_when_the_server_allows_it() {
    if !openssl_present("openssl_completes_a_tls12_handshake_when_the_server_allows_it") {
        return;
    }
    let server = Server::start(interop_settings());
    let ca = server.ca();
    let run = s_client(server.addr(), &verifying(HOST, &ca, &["-tls1_2"]));
    // openssl names TLS 1.2 suites its own way: this is
    // TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 (the server's key is RSA).
    assert_handshake(&run, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384");

    assert_accepted(&server, 1);
    let n = server.recorder().stats().negotiated.expect("negotiated");
    assert_eq!(
        (n.version.as_str(), n.suite.as_str(), n.group.as_str()),
        ("TLSv1_2", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "X25519"),
        "{n:?}"
    );
    assert!(server.failures().is_empty(), "{:?}", server.failures());
    server.stop();
}

/// Runs a TLS 1.3 handshake that openssl must abandon with `verify_error`, and checks that
/// the server counted openssl's alert as one refusal and accepted no connection.
fn assert_openssl_refuses(server: &Server, host: &str, ca: &str, verify_error: &str) {
    let run = s_client(server.addr(), &verifying(host, ca, &["-tls1_3"]));
    assert_verify_failed(&run, verify_error);
    // openssl ends the handshake with an alert, which the server counts.
    assert_eq!(
        server.failures_once(1),
        BTreeMap::from([("peer_rejected".to_owned(), 1)])
    );
    assert_eq!(server.recorder().stats().connections, 0);
}

#[test]
fn openssl_rejects_the_certificate_for_another_host_name() {
    if !openssl_present("openssl_rejects_the_certificate_for_another_host_name") {
        return;
    }
    let server = Server::start(interop_settings());
    assert_openssl_refuses(&server, OTHER_HOST, &server.ca(), "hostname mismatch");
    server.stop();
}

#[test]
fn openssl_rejects_a_server_whose_ca_it_does_not_trust() {
    if !openssl_present("openssl_rejects_a_server_whose_ca_it_does_not_trust") {
        return;
    }
    let server = Server::start(interop_settings());
    let stranger = server.stranger_ca();
    assert_openssl_refuses(
        &server,
        HOST,
        &stranger,
        "unable to get local issuer certificate",
    );
    server.stop();
}

#[test]
fn the_server_refuses_tls11_from_openssl_as_no_common_parameters() {
    if !openssl_present("the_server_refuses_tls11_from_openssl_as_no_common_parameters") {
        return;
    }
    // The server allows TLS 1.2 as well as 1.3: TLS 1.1 is refused for itself.
    let server = Server::start(interop_settings());
    let ca = server.ca();
    // SECLEVEL=0 lets openssl 3 offer TLS 1.1 at all; -msg shows the ClientHello it sent.
    let run = s_client(
        server.addr(),
        &verifying(
            HOST,
            &ca,
            &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-msg"],
        ),
    );
    assert!(!run.success, "a TLS 1.1 handshake succeeded: {run}");
    assert!(!run.has_line("CONNECTION ESTABLISHED"), "{run}");
    if run.text.contains("no protocols available") {
        note(
            "openssl on this machine cannot offer TLS 1.1 (\"no protocols available\"): \
             it failed before sending a ClientHello, so the server's refusal of TLS 1.1 \
             is NOT checked here",
        );
        server.stop();
        return;
    }
    assert!(
        run.text
            .lines()
            .any(|l| l.starts_with(">>> TLS 1.1, Handshake") && l.ends_with("ClientHello")),
        "openssl did not send a TLS 1.1 ClientHello: {run}"
    );
    // The server ends the handshake with a fatal alert.
    assert!(
        run.text.contains("alert handshake failure") || run.text.contains("alert protocol version"),
        "{run}"
    );
    assert_eq!(
        server.failures_once(1),
        BTreeMap::from([("no_common_parameters".to_owned(), 1)])
    );
    assert_eq!(server.recorder().stats().connections, 0);
    server.stop();
}

#[test]
fn the_server_keeps_streaming_to_a_viewer_around_openssl_handshakes() {
    if !openssl_present("the_server_keeps_streaming_to_a_viewer_around_openssl_handshakes") {
        return;
    }
    let server = Server::start(interop_settings());
    let ca = server.ca();
    let viewer_rt = RoleRuntime::new("viewer-interop", 1).expect("viewer runtime");
    let viewer = server.viewer(&viewer_rt);
    server.open_window();
    let streaming = wait_until(PATIENCE, || viewer.metrics().frames >= 5);
    assert!(streaming, "{:?}", viewer.metrics());
    let before = viewer.metrics().frames;

    let run = s_client(server.addr(), &verifying(HOST, &ca, &["-tls1_3"]));
    assert_handshake(&run, "TLSv1.3", "TLS_AES_256_GCM_SHA384");
    let run = s_client(server.addr(), &verifying(OTHER_HOST, &ca, &["-tls1_3"]));
    assert_verify_failed(&run, "hostname mismatch");

    let more = wait_until(PATIENCE, || viewer.metrics().frames >= before + 5);
    assert!(!viewer.is_finished(), "the viewer stopped");
    let (m, outcome) = viewer_rt.handle().block_on(viewer.stop());
    assert!(more, "no frames after the openssl runs: {m:?}");
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(m.connections, 1);
    assert_eq!(m.sequence_gaps, 0);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    // The viewer and openssl's good handshake were accepted; the bad one was counted.
    assert_accepted(&server, 2);
    assert_eq!(
        server.failures_once(1),
        BTreeMap::from([("peer_rejected".to_owned(), 1)])
    );
    server.stop();
}

#[test]
fn default_settings_need_an_openssl_with_x25519mlkem768() {
    if !openssl_present("default_settings_need_an_openssl_with_x25519mlkem768") {
        return;
    }
    // vmsbench's default settings offer X25519MLKEM768 as the only group.
    let server = Server::start(TlsSettings::default());
    let ca = server.ca();
    let run = s_client(server.addr(), &verifying(HOST, &ca, &["-tls1_3"]));
    if run.success {
        // openssl 3.5 or later: it negotiates the hybrid group like a vmsbench client.
        assert_handshake(&run, "TLSv1.3", "TLS_AES_256_GCM_SHA384");
        assert_accepted(&server, 1);
        let n = server.recorder().stats().negotiated.expect("negotiated");
        assert_eq!(n.group, "X25519MLKEM768", "{n:?}");
    } else {
        note(
            "this openssl offers no X25519MLKEM768, the only key-exchange group of \
             vmsbench's default TLS settings: the server refused it as \
             no_common_parameters (openssl 3.5 or later supports the group; the other \
             interop tests add X25519)",
        );
        assert!(!run.has_line("CONNECTION ESTABLISHED"), "{run}");
        assert_eq!(
            server.failures_once(1),
            BTreeMap::from([("no_common_parameters".to_owned(), 1)])
        );
    }
    server.stop();
}
