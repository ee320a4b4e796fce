//! What the integration tests share: the host names they serve, running orchestration
//! futures and waiting on conditions, cameras that start streaming soon, a recording server
//! on 127.0.0.1:0 with its run clock and window, live viewer configurations, and TLS
//! listeners with one-connection handshakes for the certificate tests.
//!
//! Everything listens on port 0 (the system picks a free port) and panics with a message
//! saying what failed: these helpers run only inside tests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, ServerConfig};
use simulators::clock::RunClock;
use simulators::metrics::Window;
use simulators::pki::Pki;
use simulators::role::recorder::{Recorder, RecorderConfig, Source};
use simulators::role::timeouts::ServerTimeouts;
use simulators::role::viewer::{Endpoint, StreamRequest, ViewerConfig};
use simulators::role::RoleRuntime;
use simulators::transport::{
    Accepted, ConnectError, Connected, Connector, KxGroup, Listener, Mode, Stream, TlsSettings,
    TlsVersion,
};
use simulators::video::{Camera, PayloadPool, Playback, Profile};
use tokio::task::JoinHandle;

/// The recording server's host name: what its certificate is issued for and clients dial.
pub const HOST: &str = "recorder-1.vms.test";
/// Another host of the same deployment, for clients that dial the wrong name.
pub const OTHER_HOST: &str = "recorder-2.vms.test";
/// How far in the future the cameras' frame clocks start, so that a viewer started right
/// after the recorder subscribes before frame 0 (a key frame) falls due.
pub const LEAD_NS: u64 = 250_000_000;
/// Window edges are set this far ahead of "now", so that no frame can be checked against
/// the window by one side before the edge is stored and by the other side after it.
pub const EDGE_NS: u64 = 20_000_000;
/// Generous deadline for anything that should take a fraction of a second.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Runs an orchestration future on a current-thread runtime of the test's own.
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("orchestration runtime")
        .block_on(f)
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether it held.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// 127.0.0.1 on port 0: a free port the system picks.
pub fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// `count` cameras with ids 0.. of a preset profile, sharing one payload pool.
pub fn cameras(preset: &str, count: u32) -> Vec<Camera> {
    cameras_of(Profile::preset(preset).expect("preset profile"), count)
}

/// `count` cameras with ids 0.. of `profile`, sharing one payload pool.
///
/// A camera's phase (where its first key frame falls within a GOP) is drawn from its seed;
/// each camera gets the first seed whose phase lies within the first eighth of a GOP, so
/// that every stream starts soon after the recorder and the tests stay short. Phases still
/// differ between cameras.
pub fn cameras_of(profile: Profile, count: u32) -> Vec<Camera> {
    profile.validate().expect("valid profile");
    let gop_ns = profile.frame_interval_ns() * u64::from(profile.gop);
    let profile = Arc::new(profile);
    let pool = PayloadPool::new(profile.max_frame_bytes(), 0x5eed);
    (0..count)
        .map(|id| {
            (0..1000u64)
                .map(|seed| Camera::new(id, profile.clone(), seed, pool.clone()))
                .find(|c| c.phase_ns() < gop_ns / 8)
                .expect("a seed with an early phase")
        })
        .collect()
}

/// A client connector in `mode`, trusting `pki`'s CA with the default TLS settings.
pub fn connector(mode: Mode, pki: &Pki) -> Connector {
    match mode {
        Mode::Plain => Connector::plain(),
        Mode::Tls => Connector::tls(
            pki.client_config(&TlsSettings::default())
                .expect("client config"),
        ),
    }
}

/// A client stream over `tcp`, already connected to a server of `pki` on `HOST`: plain, or
/// after a TLS handshake with the default settings.
pub async fn client_stream(mode: Mode, pki: &Pki, tcp: tokio::net::TcpStream) -> Stream {
    match mode {
        Mode::Plain => Stream::Plain(tcp.into()),
        Mode::Tls => {
            let config = pki
                .client_config(&TlsSettings::default())
                .expect("client config");
            let name = rustls_pki_types::ServerName::try_from(HOST).expect("DNS name");
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp.into())
                .await
                .expect("TLS handshake");
            Stream::Tls(Box::new(tokio_rustls::TlsStream::Client(tls)))
        }
    }
}

/// TLS 1.2 only, with X25519 (TLS 1.2 has no hybrid post-quantum group).
pub fn tls12() -> TlsSettings {
    TlsSettings {
        versions: vec![TlsVersion::Tls12],
        groups: vec![KxGroup::X25519],
        ..Default::default()
    }
}

/// A recording server for [`HOST`] streaming its cameras live from its pacer, with the
/// run clock and measurement window it counts on and the runtime it runs on.
///
/// The fields are dropped in order: the recorder before its runtime.
pub struct Recording {
    pub clock: RunClock,
    pub window: Arc<Window>,
    pub cameras: Vec<Camera>,
    /// When the cameras' frame clocks start: [`LEAD_NS`] after the recorder.
    pub start_ns: u64,
    pub recorder: Recorder,
    pub rt: RoleRuntime,
}

impl Recording {
    /// Starts a recorder of `cameras` on `rt`, serving connections from `listener` with
    /// per-connection queues of `queue_frames`, on a new run clock and a window not yet opened.
    pub fn start(
        rt: RoleRuntime,
        listener: Listener,
        cameras: Vec<Camera>,
        queue_frames: usize,
    ) -> Recording {
        let clock = RunClock::new();
        let window = Arc::new(Window::default());
        let start_ns = clock.now_ns() + LEAD_NS;
        let config = RecorderConfig {
            host: HOST.to_owned(),
            cameras: cameras.clone(),
            queue_frames,
            start_ns,
            source: Source::Pacer,
            timeouts: ServerTimeouts::default(),
        };
        let recorder =
            Recorder::start(&rt, listener, config, clock, window.clone()).expect("recorder start");
        Recording {
            clock,
            window,
            cameras,
            start_ns,
            recorder,
            rt,
        }
    }
}

/// Opens `window` a little ([`EDGE_NS`]) ahead of `clock`'s now; returns its start.
pub fn open_window(clock: &RunClock, window: &Window) -> u64 {
    let start = clock.now_ns() + EDGE_NS;
    window.open(start);
    start
}

/// Closes `window` a little ([`EDGE_NS`]) ahead of `clock`'s now; returns its end.
pub fn close_window(clock: &RunClock, window: &Window) -> u64 {
    let end = clock.now_ns() + EDGE_NS;
    window.close(end);
    end
}

/// A live viewer of `cameras` (each at its own frame interval) dialling `addr` as [`HOST`]
/// through `connector`, with no failover and no frame hook.
pub fn live_viewer<'a>(
    addr: SocketAddr,
    cameras: impl IntoIterator<Item = &'a Camera>,
    connector: Connector,
    label: &str,
) -> ViewerConfig {
    ViewerConfig {
        server: Endpoint {
            addr,
            host: HOST.to_owned(),
        },
        failover: None,
        streams: cameras
            .into_iter()
            .map(|c| StreamRequest {
                camera: c.id,
                interval_ns: c.profile.frame_interval_ns(),
            })
            .collect(),
        playback: Playback::Live,
        connector,
        label: label.to_owned(),
        on_frame: None,
        on_header: None,
        verify: None,
        meter: None,
        start_at_ns: None,
    }
}

/// A TLS listener with `server`'s configuration on 127.0.0.1:0, and the address it got.
pub async fn listen(server: Arc<ServerConfig>) -> (Arc<Listener>, SocketAddr) {
    let listener = Listener::bind(localhost(), Some(server))
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    (Arc::new(listener), addr)
}

/// Accepts one connection and completes the server side of its handshake.
pub fn accept_one(listener: &Arc<Listener>) -> JoinHandle<Result<Accepted, ConnectError>> {
    let listener = listener.clone();
    tokio::spawn(async move {
        let incoming = listener.accept().await.expect("accept");
        incoming.handshake().await
    })
}

/// One TLS handshake with a client of configuration `client` dialling `host` at `addr`,
/// served by [`accept_one`] on `listener`. Returns both ends if both completed it, or
/// both ends' errors (the client's first, both printed) if both failed; panics if only
/// one end failed.
pub async fn try_handshake(
    listener: &Arc<Listener>,
    addr: SocketAddr,
    client: Arc<ClientConfig>,
    host: &str,
) -> Result<(Connected, Accepted), (ConnectError, ConnectError)> {
    let server = accept_one(listener);
    let client_side = Connector::tls(client).connect(addr, host).await;
    let server_side = server.await.expect("server task");
    match (client_side, server_side) {
        (Ok(connected), Ok(accepted)) => Ok((connected, accepted)),
        (Err(client_err), Err(server_err)) => {
            println!(
                "client refused: [{}] {client_err}",
                client_err.category.as_str()
            );
            println!(
                "server saw: [{}] {server_err}",
                server_err.category.as_str()
            );
            Err((client_err, server_err))
        }
        (Ok(connected), Err(server_err)) => panic!(
            "the client completed the handshake as {host} (negotiated {:?}), \
             the server failed: {server_err}",
            connected.negotiated
        ),
        (Err(client_err), Ok(accepted)) => panic!(
            "the server completed the handshake (negotiated {:?}), \
             the client failed as {host}: {client_err}",
            accepted.negotiated
        ),
    }
}
