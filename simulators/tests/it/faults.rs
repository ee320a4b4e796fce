//! Faults in the middle of a run, over real sockets on 127.0.0.1: clients killed while
//! others stream (their connections reset), and a recording server whose process has run
//! out of file descriptors.
//!
//! Every assertion is about counts, categories and frames; none bounds how fast anything
//! runs. The one bound on a count (failed accepts) follows from the back-off itself and
//! only loosens on a slow machine.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use simulators::pki::{KeyType, Pki};
use simulators::role::recorder::DEFAULT_QUEUE_FRAMES;
use simulators::role::viewer::Viewer;
use simulators::role::{RoleRuntime, ACCEPT_BACKOFF};
use simulators::transport::{Connector, Listener, Mode, TlsSettings};
use simulators::video::{Camera, Playback};
use simulators::wire::{self, Header, Kind, Subscribe, MAX_PAYLOAD};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::task::JoinHandle;

use crate::support::{
    block_on, cameras, client_stream, close_window, connector, live_viewer, localhost, open_window,
    wait_until, Recording, HOST, PATIENCE,
};

const MODES: [Mode; 2] = [Mode::Plain, Mode::Tls];

fn pki() -> Pki {
    Pki::generate(&[HOST], KeyType::EcdsaP256, 30).expect("PKI generation")
}

/// A recording server of `cameras` on 127.0.0.1:0 in `mode`.
async fn recording(mode: Mode, pki: &Pki, cameras: Vec<Camera>) -> Recording {
    let tls = match mode {
        Mode::Plain => None,
        Mode::Tls => Some(
            pki.server_config(HOST, &TlsSettings::default())
                .expect("server config"),
        ),
    };
    let listener = Listener::bind(localhost(), tls)
        .await
        .expect("bind 127.0.0.1:0");
    let rt = RoleRuntime::new("recorder-1", 1).expect("recorder runtime");
    Recording::start(rt, listener, cameras, DEFAULT_QUEUE_FRAMES)
}

/// Frames of `cameras` due in `[from, to)` on a recording that started at `start_ns`.
fn frames_due(cameras: &[Camera], start_ns: u64, from: u64, to: u64) -> u64 {
    cameras
        .iter()
        .map(|c| c.frames_due(Playback::Live, start_ns, from, to))
        .sum()
}

/// Sends a live subscription to the cameras `ids`.
async fn subscribe<W: AsyncWrite + Unpin>(wr: &mut W, ids: &[u32]) {
    let sub = Subscribe {
        cameras: ids.to_vec(),
        playback_speed: None,
        label: String::new(),
    };
    wire::write_message(wr, Header::new(Kind::Subscribe), &sub.encode())
        .await
        .expect("send the subscription");
    wr.flush().await.expect("flush");
}

/// Reads the next frame's header (its payload read and discarded).
async fn next_frame<R: AsyncRead + Unpin>(rd: &mut R, payload: &mut Vec<u8>) -> Option<Header> {
    let h = wire::read_header(rd, MAX_PAYLOAD).await.ok()??;
    wire::read_payload(rd, &h, payload).await.ok()?;
    (h.kind == Kind::Frame).then_some(h)
}

/// A client of the viewer process that is about to be killed: it subscribes to `ids` and
/// reads frames, counting them in `frames`, until its task is aborted. Its socket lingers
/// for 0 s, so that closing it resets the connection, as the kernel does for a process
/// that dies with frames unread.
async fn doomed_client(
    mode: Mode,
    pki: &Pki,
    addr: SocketAddr,
    ids: &[u32],
    frames: Arc<AtomicU64>,
) -> JoinHandle<()> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    let tcp = socket.connect(addr).await.expect("TCP connect");
    tcp.set_zero_linger().expect("SO_LINGER 0");
    let mut stream = client_stream(mode, pki, tcp).await;
    subscribe(&mut stream, ids).await;
    tokio::spawn(async move {
        let mut rd = BufReader::with_capacity(64 * 1024, stream);
        let mut payload = Vec::new();
        while next_frame(&mut rd, &mut payload).await.is_some() {
            frames.fetch_add(1, Ordering::Relaxed);
        }
    })
}

#[test]
fn viewers_killed_mid_window_are_counted_as_reset_and_the_others_miss_nothing() {
    block_on(async {
        for mode in MODES {
            let pki = pki();
            let rec = recording(mode, &pki, cameras("720p", 4)).await;
            let addr = rec.recorder.addr();
            let ids: Vec<u32> = rec.cameras.iter().map(|c| c.id).collect();
            let viewer_rt = RoleRuntime::new("viewers", 1).expect("viewer runtime");
            let survivors: Vec<Viewer> = (0..2)
                .map(|_| {
                    let config =
                        live_viewer(addr, &rec.cameras, connector(mode, &pki), "viewer-recorder");
                    Viewer::start(&viewer_rt, config, rec.clock, rec.window.clone())
                })
                .collect();
            let doomed_frames = Arc::new(AtomicU64::new(0));
            let mut doomed = Vec::new();
            for _ in 0..3 {
                doomed.push(doomed_client(mode, &pki, addr, &ids, doomed_frames.clone()).await);
            }
            let streaming = wait_until(PATIENCE, || {
                survivors
                    .iter()
                    .all(|v| v.metrics().ttff_us.len() == ids.len() as u64)
                    && doomed_frames.load(Ordering::Relaxed) > 0
            })
            .await;
            assert!(streaming, "{mode}: not every client streams");
            assert_eq!(rec.recorder.subscriptions(), 5 * ids.len(), "{mode}");

            // The window opens; in its middle the doomed clients' process dies.
            let win_start = open_window(&rec.clock, &rec.window);
            tokio::time::sleep(Duration::from_millis(400)).await;
            for d in &doomed {
                d.abort();
            }
            for d in doomed.drain(..) {
                assert!(d.await.is_err_and(|e| e.is_cancelled()), "{mode}");
            }
            tokio::time::sleep(Duration::from_millis(600)).await;
            let win_end = close_window(&rec.clock, &rec.window);
            let due = frames_due(&rec.cameras, rec.start_ns, win_start, win_end);
            assert!(due > 0);

            // The recording server counts each killed connection once, as a reset, and
            // lets its streams go.
            let let_go = wait_until(PATIENCE, || {
                rec.recorder.stats().failures.values().sum::<u64>() >= 3
                    && rec.recorder.subscriptions() == 2 * ids.len()
            })
            .await;
            let stats = rec.recorder.stats();
            assert!(
                let_go,
                "{mode}: {:?}, {} subscriptions",
                stats.failures,
                rec.recorder.subscriptions()
            );
            assert_eq!(
                stats.failures,
                BTreeMap::from([("reset".to_owned(), 3)]),
                "{mode}"
            );
            assert_eq!(stats.connections, 5, "{mode}");

            // Every other viewer received every frame due in the window.
            let drained = wait_until(PATIENCE, || {
                rec.clock.now_ns() > win_end && survivors.iter().all(|v| v.metrics().frames >= due)
            })
            .await;
            assert!(drained, "{mode}: frames due {due}");
            for v in survivors {
                let (m, outcome) = v.stop().await;
                assert!(outcome.is_ok(), "{mode}: {outcome:?}");
                assert_eq!(m.frames, due, "{mode}: every frame due arrived");
                assert_eq!((m.sequence_gaps, m.connections), (0, 1), "{mode}");
                assert!(m.errors.is_empty(), "{mode}: {:?}", m.errors);
            }
            let stats = rec.recorder.stats();
            assert_eq!(stats.sent.dropped_frames, 0, "{mode}");
            assert_eq!(stats.failures.len(), 1, "{mode}: {:?}", stats.failures);
            rec.recorder.stop().await;
        }
    });
}

/// Set in the child process that runs [`out_of_descriptors`].
const CHILD: &str = "VMSBENCH_OUT_OF_DESCRIPTORS_CHILD";

/// Runs out of file descriptors in a process of its own: this test binary again, running
/// this test alone, so that no other test loses its descriptors.
#[test]
fn a_recorder_out_of_descriptors_backs_off_counts_and_accepts_again() {
    const NAME: &str = "faults::a_recorder_out_of_descriptors_backs_off_counts_and_accepts_again";
    if std::env::var_os(CHILD).is_some() {
        return block_on(out_of_descriptors());
    }
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args([NAME, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test: {stdout}"
    );
}

/// Lowers this process's descriptor limit to `spare` above what it has open, so that using
/// every descriptor up takes a few dozen files rather than a million.
fn limit_descriptors(spare: u64) {
    let open = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count() as u64;
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct given; lowering the soft
    // limit affects only this process, which runs this test alone.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl), 0);
        rl.rlim_cur = (open + spare).min(rl.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &rl), 0);
    }
}

/// In the child process: a recording server streams to a viewer, the process runs out of
/// descriptors, a new client's connection waits in the listen backlog; the server's accept
/// fails, is counted and backs off (the viewer streams on); once descriptors are free it
/// accepts the waiting client and serves it.
async fn out_of_descriptors() {
    limit_descriptors(64);
    let pki = pki();
    let rec = recording(Mode::Plain, &pki, cameras("720p", 2)).await;
    let addr = rec.recorder.addr();
    let viewer_rt = RoleRuntime::new("viewers", 1).expect("viewer runtime");
    let config = live_viewer(addr, &rec.cameras, Connector::plain(), "viewer-recorder");
    let viewer = Viewer::start(&viewer_rt, config, rec.clock, rec.window.clone());
    let started = wait_until(PATIENCE, || viewer.metrics().ttff_us.len() == 2).await;
    assert!(started, "{:?}", viewer.metrics());
    let win_start = open_window(&rec.clock, &rec.window);

    // A socket made while descriptors are left connects once there are none: the kernel
    // completes its handshake into the listen backlog, and the server cannot accept it.
    let late = tokio::net::TcpSocket::new_v4().expect("socket");
    let mut hoard = Vec::new();
    let exhausted = loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => hoard.push(f),
            Err(e) => break e,
        }
    };
    assert_eq!(exhausted.raw_os_error(), Some(libc::EMFILE), "{exhausted}");
    let began = Instant::now();
    let late = late.connect(addr).await.expect("connect into the backlog");
    let accepts_failed = || {
        rec.recorder
            .stats()
            .failures
            .get("accept")
            .copied()
            .unwrap_or(0)
    };
    let failing = wait_until(PATIENCE, || accepts_failed() >= 5).await;
    let (failed, elapsed) = (accepts_failed(), began.elapsed());
    assert!(failing, "accepts did not fail: {:?}", rec.recorder.stats());
    // Every failure is followed by a pause of ACCEPT_BACKOFF: no spinning.
    let most = elapsed.as_nanos() / ACCEPT_BACKOFF.as_nanos() + 1;
    assert!(
        u128::from(failed) <= most,
        "{failed} failed accepts in {elapsed:?}: the accept loop did not back off"
    );
    assert_eq!(rec.recorder.stats().connections, 1, "only the viewer");
    // The viewer streams on.
    let before = viewer.metrics().frames;
    let streams_on = wait_until(PATIENCE, || viewer.metrics().frames >= before + 10).await;
    assert!(streams_on, "{:?}", viewer.metrics());

    // Descriptors come free: the waiting client is accepted and served from a key frame.
    drop(hoard);
    let (rd, mut wr) = tokio::io::split(late);
    subscribe(&mut wr, &[0]).await;
    let mut rd = BufReader::new(rd);
    let mut payload = Vec::new();
    let mut seqs = Vec::new();
    for _ in 0..5 {
        let frame = tokio::time::timeout(PATIENCE, next_frame(&mut rd, &mut payload))
            .await
            .expect("a frame for the client that waited")
            .expect("a frame");
        assert_eq!(frame.stream_id, 0);
        if seqs.is_empty() {
            assert!(frame.is_keyframe(), "{frame:?}");
        }
        seqs.push(frame.seq);
    }
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let stats = rec.recorder.stats();
    assert_eq!(stats.connections, 2, "{stats:?}");
    assert_eq!(
        stats.failures.keys().collect::<Vec<_>>(),
        ["accept"],
        "{stats:?}"
    );

    // The viewer missed nothing across it all.
    let win_end = close_window(&rec.clock, &rec.window);
    let due = frames_due(&rec.cameras, rec.start_ns, win_start, win_end);
    let drained = wait_until(PATIENCE, || {
        rec.clock.now_ns() > win_end && viewer.metrics().frames >= due
    })
    .await;
    assert!(drained, "frames due {due}: {:?}", viewer.metrics());
    let (m, outcome) = viewer.stop().await;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(m.frames, due, "every frame due arrived");
    assert_eq!((m.sequence_gaps, m.connections), (0, 1));
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    rec.recorder.stop().await;
}
