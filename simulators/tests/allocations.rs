//! Nothing is allocated per frame: a recording server streams to a viewer that checks
//! every payload against its pool, and a counting allocator (this test binary's global
//! allocator, so the test has a binary of its own) sees what both sides allocate while
//! hundreds of frames pass.
//!
//! Plaintext must allocate nothing per frame, on either side. Under TLS the record layer
//! (rustls) allocates a little per record on each side; that is counted and bounded here,
//! so that it cannot grow unnoticed, and everything around it must still allocate nothing.

#[allow(dead_code)]
#[path = "it/support.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use simulators::metrics::ClientMeter;
use simulators::pki::{KeyType, Pki};
use simulators::role::recorder::DEFAULT_QUEUE_FRAMES;
use simulators::role::viewer::{Viewer, ViewerConfig};
use simulators::role::RoleRuntime;
use simulators::transport::{Listener, Mode, TlsSettings};
use simulators::video::Profile;

use support::{
    block_on, cameras_of, connector, live_viewer, localhost, open_window, wait_until, Recording,
    HOST, PATIENCE,
};

/// Counts every allocation (and reallocation) the process makes.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to the system allocator unchanged; the counter is a side
// effect that allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's obligations are the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Frames measured once the stream runs (at 60 fps, a few seconds).
const FRAMES: u64 = 240;

/// Allocations per frame, both sides together, in `mode` once the stream has settled.
fn allocations_per_frame(mode: Mode) -> f64 {
    block_on(async {
        let pki = Pki::generate(&[HOST], KeyType::EcdsaP256, 30).expect("PKI generation");
        let tls = match mode {
            Mode::Plain => None,
            Mode::Tls => Some(
                pki.server_config(HOST, &TlsSettings::default())
                    .expect("server config"),
            ),
        };
        let listener = Listener::bind(localhost(), tls).await.expect("bind");
        // One camera at 60 fps with large frames (several TLS records each).
        let profile = Profile {
            fps: 60,
            ..Profile::preset("1080p").expect("preset")
        };
        let rec = Recording::start(
            RoleRuntime::new("alloc-rec", 1).expect("runtime"),
            listener,
            cameras_of(profile, 1),
            DEFAULT_QUEUE_FRAMES,
        );
        let viewer_rt = RoleRuntime::new("alloc-view", 1).expect("runtime");
        let meter = ClientMeter::alone();
        let config = ViewerConfig {
            verify: Some(rec.cameras[0].pool().clone()),
            meter: Some(meter.clone()),
            ..live_viewer(
                rec.recorder.addr(),
                &rec.cameras,
                connector(mode, &pki),
                "viewer-recorder",
            )
        };
        let viewer = Viewer::start(&viewer_rt, config, rec.clock, rec.window.clone());
        open_window(&rec.clock, &rec.window);
        let frames = || meter.meter().frames();
        // Past the start (connection, first frames, buffers and spares made once).
        let streaming = wait_until(PATIENCE, || frames() >= 30).await;
        assert!(streaming, "{mode}: no frames: {:?}", viewer.metrics());
        let (f0, a0) = (frames(), ALLOCATIONS.load(Ordering::Relaxed));
        let more = wait_until(Duration::from_secs(30), || frames() >= f0 + FRAMES).await;
        let (f1, a1) = (frames(), ALLOCATIONS.load(Ordering::Relaxed));
        assert!(more, "{mode}: stalled at {f1} frames");
        let m = viewer.stop().await;
        assert!(m.0.errors.is_empty(), "{mode}: {:?}", m.0.errors);
        // Whether frames came late depends on the machine, not on what is counted here: a
        // late frame waits in the connection's backlog, whose queue keeps its capacity
        // (it grows once, to the longest backlog), so it costs no allocation per frame.
        drop(rec);
        (a1 - a0) as f64 / (f1 - f0) as f64
    })
}

#[test]
fn plaintext_frames_cost_no_allocation_on_either_side_and_tls_only_the_record_layers() {
    let plain = allocations_per_frame(Mode::Plain);
    let tls = allocations_per_frame(Mode::Tls);
    println!("allocations per frame: plain {plain:.3}, tls {tls:.3}");
    // A stray allocation now and then (a timer wheel growing, a waker list) is not per
    // frame; one per frame would be 1.0.
    assert!(
        plain < 0.05,
        "plaintext allocates {plain:.3} times per frame"
    );
    // rustls: a buffer per record sealed, one per record opened, the receive buffer
    // resized as records arrive. A 1080p frame at 60 fps is one to four records.
    assert!(tls < 16.0, "TLS allocates {tls:.3} times per frame");
}
