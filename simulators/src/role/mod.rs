//! The roles of a VMS deployment, each on its own tokio runtime.
//!
//! A [`RoleRuntime`] names its threads after the role and keeps track of them, so that the
//! CPU time of a role (a recording server, the viewers) can be measured on its own even
//! when every role shares one process.

pub mod bulk;
pub mod management;
pub mod recorder;
pub mod rpc;
pub mod viewer;
pub mod wan;

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

/// How long a role waits for a peer to accept the end of a connection.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Shuts down the sending side of a connection (for TLS: sends close_notify), giving up
/// after [`CLOSE_TIMEOUT`] when the peer no longer reads.
pub(crate) async fn close_gently<W: AsyncWrite + Unpin>(wr: &mut W) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, wr.shutdown()).await;
}

/// CPU time of a set of threads: the live ones read from their CPU clocks, the ones that
/// have exited remembered from their last reading.
#[derive(Debug, Default)]
pub struct ThreadCpu {
    inner: Mutex<CpuInner>,
}

#[derive(Debug, Default)]
struct CpuInner {
    live: Vec<libc::pthread_t>,
    retired_ns: u64,
}

fn clock_ns(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the call only writes to it.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

impl ThreadCpu {
    /// Registers the calling thread.
    pub fn enter(&self) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        if let Ok(mut g) = self.inner.lock() {
            g.live.push(me);
        }
    }

    /// Deregisters the calling thread, keeping its CPU time. Must run on the thread itself
    /// before it exits, which is what makes reading the other threads' clocks safe.
    pub fn exit(&self) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        let used = clock_ns(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or(0);
        if let Ok(mut g) = self.inner.lock() {
            // SAFETY: pthread_equal only compares the two handles.
            g.live
                .retain(|t| unsafe { libc::pthread_equal(*t, me) } == 0);
            g.retired_ns += used;
        }
    }

    /// Total CPU seconds (user + system) of every thread ever registered.
    pub fn seconds(&self) -> f64 {
        let Ok(g) = self.inner.lock() else { return 0.0 };
        let mut ns = g.retired_ns;
        for t in &g.live {
            let mut clock: libc::clockid_t = 0;
            // SAFETY: every thread in `live` is still running: threads remove themselves
            // (under this lock) before they exit, so the handle is valid here.
            if unsafe { libc::pthread_getcpuclockid(*t, &mut clock) } == 0 {
                ns += clock_ns(clock).unwrap_or(0);
            }
        }
        ns as f64 / 1e9
    }
}

/// A tokio runtime that belongs to one role, with named, CPU-accounted threads.
#[derive(Debug)]
pub struct RoleRuntime {
    name: String,
    runtime: Option<Runtime>,
    cpu: Arc<ThreadCpu>,
}

impl RoleRuntime {
    /// A multi-threaded runtime with `workers` worker threads named `name`.
    pub fn new(name: &str, workers: usize) -> io::Result<Self> {
        let cpu = Arc::new(ThreadCpu::default());
        let (on_start, on_stop) = (cpu.clone(), cpu.clone());
        let runtime = Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name(name)
            .enable_all()
            .on_thread_start(move || on_start.enter())
            .on_thread_stop(move || on_stop.exit())
            .build()?;
        Ok(RoleRuntime {
            name: name.to_owned(),
            runtime: Some(runtime),
            cpu,
        })
    }

    /// The role's name (also its threads' name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A handle to spawn onto this runtime.
    pub fn handle(&self) -> Handle {
        match &self.runtime {
            Some(rt) => rt.handle().clone(),
            None => unreachable!("the runtime is only taken in drop"),
        }
    }

    /// Spawns a task on this role's runtime.
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle().spawn(fut)
    }

    /// The CPU account of this role, for threads of its own that it starts outside the
    /// runtime (they call [`ThreadCpu::enter`] and [`ThreadCpu::exit`]).
    pub fn cpu(&self) -> Arc<ThreadCpu> {
        self.cpu.clone()
    }

    /// CPU seconds used so far by this role's threads.
    pub fn cpu_seconds(&self) -> f64 {
        self.cpu.seconds()
    }
}

impl Drop for RoleRuntime {
    fn drop(&mut self) {
        // Dropping a runtime inside an async context panics; shutting down in the
        // background is safe anywhere. Tasks should have been stopped before this.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_of_a_busy_role_is_counted_and_threads_are_named() {
        let role = RoleRuntime::new("busy-role", 1).expect("runtime");
        let before = role.cpu_seconds();
        let name = role
            .handle()
            .block_on(role.spawn(async {
                // Spin until this thread itself has used 100 ms of CPU, however long that
                // takes on a busy machine.
                let start = clock_ns(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or(0);
                let mut x = 0u64;
                while clock_ns(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or(u64::MAX) - start
                    < 100_000_000
                {
                    x = x.wrapping_add(std::hint::black_box(1));
                }
                std::hint::black_box(x);
                std::thread::current().name().map(str::to_owned)
            }))
            .expect("join");
        assert_eq!(name.as_deref(), Some("busy-role"));
        let used = role.cpu_seconds() - before;
        assert!(used >= 0.1, "role charged {used} s for 100 ms of CPU");
    }
}
