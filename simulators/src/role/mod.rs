//! The roles of a VMS deployment, each on its own tokio runtime.
//!
//! A [`RoleRuntime`] names its threads after the role and keeps track of them, so that the
//! CPU time of a role (a recording server, the viewers) can be measured on its own even
//! when every role shares one process.

pub mod bulk;
pub mod management;
pub mod recorder;
pub mod rpc;
pub mod timeouts;
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
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a server's accept loop pauses after an accept fails (out of file descriptors,
/// say): the connection waiting in the listen backlog would fail again at once, so
/// without a pause the loop would spin. At most 100 failed accepts a second are counted,
/// and accepting resumes within this long of descriptors coming free.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Shuts down the sending side of a connection (for TLS: sends close_notify), giving up
/// after [`CLOSE_TIMEOUT`] when the peer no longer reads.
pub(crate) async fn close_gently<W: AsyncWrite + Unpin>(wr: &mut W) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, wr.shutdown()).await;
}

/// What every server role keeps: its cancellation, its tasks, its failure counts and how
/// long it waits on its peers, and the accept loop and handshake prologue they all share.
#[derive(Debug, Default)]
pub(crate) struct ServerCore {
    /// Cancelled when the server stops.
    pub(crate) cancel: tokio_util::sync::CancellationToken,
    /// Every task the server started.
    pub(crate) tasks: tokio_util::task::TaskTracker,
    /// How long it waits on each connection's peer.
    pub(crate) timeouts: timeouts::ServerTimeouts,
    failures: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Accept loops among `tasks`.
    listeners: std::sync::atomic::AtomicUsize,
}

impl ServerCore {
    /// A server core that holds its peers to `timeouts`.
    pub(crate) fn new(timeouts: timeouts::ServerTimeouts) -> Self {
        ServerCore {
            timeouts,
            ..ServerCore::default()
        }
    }

    /// Connections open now (from the TCP accept until the server lets go of them).
    pub(crate) fn open_connections(&self) -> usize {
        let listeners = self.listeners.load(std::sync::atomic::Ordering::Relaxed);
        self.tasks.len().saturating_sub(listeners)
    }

    /// Counts one failed connection of `category`.
    pub(crate) fn fail(&self, category: &str) {
        if let Ok(mut f) = self.failures.lock() {
            *f.entry(category.to_owned()).or_default() += 1;
        }
    }

    /// Failures so far, by category.
    pub(crate) fn failures(&self) -> std::collections::BTreeMap<String, u64> {
        self.failures.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Starts accepting on `listener`, on `runtime`, until the server stops: each
    /// connection is handed to `serve` with the server's shared state (see
    /// [`ServerCore::accept_loop`]).
    pub(crate) fn spawn_accepting<S, F, Fut>(
        shared: &Arc<S>,
        listener: crate::transport::Listener,
        runtime: &tokio::runtime::Handle,
        serve: F,
    ) where
        S: AsRef<ServerCore> + Send + Sync + 'static,
        F: Fn(Arc<S>, crate::transport::Incoming) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let core: &ServerCore = (**shared).as_ref();
        core.listeners
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let s = shared.clone();
        let serving = async move {
            let server = s.clone();
            let core: &ServerCore = (*s).as_ref();
            core.accept_loop(listener, move |i| serve(server.clone(), i))
                .await;
        };
        (**shared).as_ref().tasks.spawn_on(serving, runtime);
    }

    /// Accepts connections until the server stops, serving each on a task of its own
    /// (started on the current runtime: the role's). Accept errors (out of file
    /// descriptors, say) are counted as `accept` and back off for [`ACCEPT_BACKOFF`]
    /// instead of ending the server or spinning; connections already served go on.
    pub(crate) async fn accept_loop<F, Fut>(&self, listener: crate::transport::Listener, serve: F)
    where
        F: Fn(crate::transport::Incoming) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        loop {
            let incoming = tokio::select! {
                _ = self.cancel.cancelled() => return,
                r = listener.accept() => r,
            };
            match incoming {
                Ok(incoming) => {
                    self.tasks.spawn(serve(incoming));
                }
                Err(_) => {
                    self.fail("accept");
                    tokio::select! {
                        _ = self.cancel.cancelled() => return,
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            }
        }
    }

    /// Completes an accepted connection's handshake within the server's handshake
    /// timeout, unless the server stops first; a failed handshake is counted under its
    /// category.
    pub(crate) async fn handshake(
        &self,
        incoming: crate::transport::Incoming,
    ) -> Option<crate::transport::Accepted> {
        let accepted = tokio::select! {
            _ = self.cancel.cancelled() => return None,
            r = incoming.handshake_within(self.timeouts.handshake) => r,
        };
        match accepted {
            Ok(a) => Some(a),
            Err(e) => {
                self.fail(e.category.as_str());
                None
            }
        }
    }

    /// Stops every task and waits for them.
    pub(crate) async fn stop(&self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// CPU time of a set of threads: the live ones read from their CPU clocks, the ones that
/// have exited remembered from their last reading.
#[derive(Debug, Default)]
pub(crate) struct ThreadCpu {
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
    pub(crate) fn enter(&self) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        if let Ok(mut g) = self.inner.lock() {
            g.live.push(me);
        }
    }

    /// Deregisters the calling thread, keeping its CPU time. Must run on the thread itself
    /// before it exits, which is what makes reading the other threads' clocks safe.
    pub(crate) fn exit(&self) {
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
    pub(crate) fn seconds(&self) -> f64 {
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

/// Burns `amount` of the calling thread's CPU time (user + system, read from its CPU
/// clock), however long that takes in wall-clock time: a deliberate, known cost per unit
/// of work, so that a role's capacity can be predicted (see
/// [`recorder::Recorder::set_cpu_per_frame`]).
pub(crate) fn spin_thread_cpu(amount: Duration) {
    let amount = u64::try_from(amount.as_nanos()).unwrap_or(u64::MAX);
    let Some(start) = clock_ns(libc::CLOCK_THREAD_CPUTIME_ID) else {
        return;
    };
    let mut x = 0u64;
    while clock_ns(libc::CLOCK_THREAD_CPUTIME_ID).is_some_and(|t| t.saturating_sub(start) < amount)
    {
        x = x.wrapping_add(std::hint::black_box(1));
    }
    std::hint::black_box(x);
}

/// A set of CPUs that threads can be pinned to (Linux `sched_setaffinity`).
#[derive(Clone)]
pub struct Affinity {
    cpus: Arc<[usize]>,
    set: libc::cpu_set_t,
}

impl std::fmt::Debug for Affinity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Affinity").field(&self.cpus).finish()
    }
}

/// The CPUs the calling thread may run on (its affinity mask; for a thread nobody pinned,
/// the process's), in ascending order.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("sched_getaffinity: {e}")));
    }
    // SAFETY: CPU_ISSET only reads the set; the index is below CPU_SETSIZE.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

impl Affinity {
    /// The CPUs listed, which must be non-empty and usable by this process: checked by
    /// pinning a short-lived thread to them (the calling thread may itself be pinned
    /// elsewhere, so its own mask is no guide).
    pub fn new(cpus: &[usize]) -> io::Result<Self> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        if cpus.is_empty() {
            return Err(invalid("CPU pinning needs at least one CPU".into()));
        }
        if let Some(bad) = cpus.iter().find(|c| **c >= libc::CPU_SETSIZE as usize) {
            return Err(invalid(format!("there is no CPU {bad}")));
        }
        // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &c in cpus {
            // SAFETY: `c` is below CPU_SETSIZE (checked above).
            unsafe { libc::CPU_SET(c, &mut set) };
        }
        let mut sorted = cpus.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let affinity = Affinity {
            cpus: sorted.into(),
            set,
        };
        let check = affinity.clone();
        std::thread::spawn(move || check.apply())
            .join()
            .map_err(|_| io::Error::other("the CPU pinning check panicked"))?
            .map_err(|e| invalid(format!("cannot pin to CPUs {cpus:?}: {e}")))?;
        Ok(affinity)
    }

    /// The CPUs, ascending.
    pub fn cpus(&self) -> &[usize] {
        &self.cpus
    }

    /// Pins the calling thread to these CPUs.
    pub fn apply(&self) -> io::Result<()> {
        // SAFETY: `self.set` is a valid cpu_set_t of the size passed; pid 0 is the calling
        // thread.
        let rc = unsafe {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.set)
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("sched_setaffinity: {e}")));
        }
        Ok(())
    }
}

/// A tokio runtime that belongs to one role, with named, CPU-accounted threads.
#[derive(Debug)]
pub struct RoleRuntime {
    name: String,
    workers: usize,
    runtime: Option<Runtime>,
    cpu: Arc<ThreadCpu>,
    affinity: Option<Affinity>,
}

impl RoleRuntime {
    /// A multi-threaded runtime with `workers` worker threads named `name`.
    pub fn new(name: &str, workers: usize) -> io::Result<Self> {
        Self::build(name, workers, None)
    }

    /// The same, with every thread of the role (workers, blocking threads, and threads the
    /// role starts itself, such as a recorder's pacer) pinned to `cpus`, so that one role's
    /// capacity can be measured apart from the roles sharing the machine with it.
    pub fn with_affinity(name: &str, workers: usize, cpus: &[usize]) -> io::Result<Self> {
        Self::build(name, workers, Some(Affinity::new(cpus)?))
    }

    fn build(name: &str, workers: usize, affinity: Option<Affinity>) -> io::Result<Self> {
        let cpu = Arc::new(ThreadCpu::default());
        let (on_start, on_stop) = (cpu.clone(), cpu.clone());
        let pin = affinity.clone();
        let runtime = Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name(name)
            .enable_all()
            .on_thread_start(move || {
                // Affinity::new checked the CPUs, so this only fails if the process's own
                // mask shrank since; the thread then runs unpinned.
                if let Some(a) = &pin {
                    let _ = a.apply();
                }
                on_start.enter();
            })
            .on_thread_stop(move || on_stop.exit())
            .build()?;
        Ok(RoleRuntime {
            name: name.to_owned(),
            workers: workers.max(1),
            runtime: Some(runtime),
            cpu,
            affinity,
        })
    }

    /// The CPUs this role's threads are pinned to, if any: threads the role starts outside
    /// the runtime pin themselves with [`Affinity::apply`].
    pub(crate) fn affinity(&self) -> Option<&Affinity> {
        self.affinity.as_ref()
    }

    /// How many worker threads its runtime has.
    pub fn workers(&self) -> usize {
        self.workers
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
    pub(crate) fn cpu(&self) -> Arc<ThreadCpu> {
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

    fn current_cpu() -> i32 {
        // SAFETY: sched_getcpu has no preconditions.
        unsafe { libc::sched_getcpu() }
    }

    #[test]
    fn pinned_role_threads_run_only_on_their_cpus_and_spin_costs_what_it_says() {
        let allowed = allowed_cpus().expect("affinity mask");
        let last = *allowed.last().expect("at least one CPU");
        let role = RoleRuntime::with_affinity("pinned-role", 2, &[last]).expect("runtime");
        assert_eq!(role.affinity().map(Affinity::cpus), Some(&[last][..]));
        let before = role.cpu_seconds();
        let cpus = role
            .handle()
            .block_on(role.spawn(async {
                let mut seen = Vec::new();
                for _ in 0..5 {
                    spin_thread_cpu(Duration::from_millis(10));
                    seen.push(current_cpu());
                    tokio::task::yield_now().await;
                }
                seen
            }))
            .expect("join");
        assert!(
            cpus.iter().all(|&c| c == last as i32),
            "ran on {cpus:?}, pinned to {last}"
        );
        let used = role.cpu_seconds() - before;
        assert!(used >= 0.05, "spun 50 ms of CPU, role charged {used} s");

        assert!(Affinity::new(&[]).is_err());
        assert!(Affinity::new(&[libc::CPU_SETSIZE as usize + 1]).is_err());
        // CPUs that exist but this process may not use (unless it may use them all).
        if allowed.len() < 1024 {
            assert!(Affinity::new(&[1023]).is_err());
        }
    }
}
