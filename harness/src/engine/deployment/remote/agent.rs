//! An agent's side of a distributed phase: it runs the share of the plan the coordinator
//! sends, when told, and reports what it counts. If the coordinator goes silent or its
//! connection drops, the agent stops every role at once: no load outlives the run.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use simulators::clock::RunClock;
use simulators::metrics::Window;
use simulators::transport::Mode;
use tokio::sync::mpsc;

use super::super::events::Schedule;
use super::super::local::Local;
use super::super::plan::Plan;
use super::{address_of, Counts, FromAgent, ToAgent, STATUS_EVERY};
use crate::engine::control::{Receiver, Sender, LOST_AFTER};
use crate::engine::credentials::{Credentials, Shipped};
use crate::engine::sampler::Sampler;
use crate::sys::process;

/// How an agent runs its shares.
#[derive(Clone, Debug, Default)]
pub(crate) struct AgentSettings {
    /// Where its servers listen (instead of the plan's addresses): the agent's own.
    pub listen: Option<IpAddr>,
    /// Resolve the host names its clients dial through the system's resolver (DNS,
    /// `/etc/hosts`) rather than use the addresses the servers reported.
    pub resolve: bool,
    /// Run this far ahead of the coordinator's clock (tests of clock-independent figures).
    pub clock_ahead: Duration,
}

/// Messages from the coordinator as a reader task passes them on.
type Inbox = mpsc::UnboundedReceiver<anyhow::Result<ToAgent>>;

/// Serves the coordinator on an authenticated connection until it says `Bye`; an error
/// when it is lost (the caller exits, which stops everything that still runs).
pub(crate) async fn serve(
    tx: Sender,
    rx: Receiver,
    settings: &AgentSettings,
) -> anyhow::Result<()> {
    let mut inbox = spawn_reader(rx);
    crate::engine::control::keep_alive(tx.clone());
    loop {
        match next(&mut inbox).await? {
            ToAgent::Prepare {
                mode,
                plan,
                epoch_unix_ns,
                credentials,
                hosts,
                resolve,
                schedule,
            } => {
                let share = Schedule::from_shipped(&schedule).map(|schedule| Share {
                    mode,
                    plan: *plan,
                    epoch_unix_ns,
                    hosts,
                    resolve: resolve || settings.resolve,
                    schedule,
                });
                let ran = match share {
                    Ok(share) => run_share(&tx, &mut inbox, share, &credentials, settings).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = ran {
                    // The reason must reach the coordinator before this process ends.
                    let reason = format!("{e:#}");
                    tx.send_flushed(&FromAgent::Failed { reason }).await;
                    return Err(e);
                }
            }
            ToAgent::Bye => return Ok(()),
            ToAgent::Abort { reason } => {
                crate::output::progress::note(&format!(
                    "the coordinator aborted the run: {reason}"
                ));
                return Ok(());
            }
            _ => {}
        }
    }
}

/// The next message, or why there is none: the connection dropped, or the coordinator
/// said nothing for [`LOST_AFTER`].
async fn next(inbox: &mut Inbox) -> anyhow::Result<ToAgent> {
    match tokio::time::timeout(LOST_AFTER, inbox.recv()).await {
        Err(_) => bail!(
            "the coordinator went silent (nothing for {}): stopping every role",
            humantime::format_duration(LOST_AFTER)
        ),
        Ok(None) => bail!("the coordinator closed the connection: stopping every role"),
        Ok(Some(msg)) => msg,
    }
}

fn spawn_reader(mut rx: Receiver) -> Inbox {
    let (tx, inbox) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match rx.recv::<ToAgent>().await {
                Ok(Some(msg)) => {
                    if tx.send(Ok(msg)).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    inbox
}

/// What `Prepare` brought.
struct Share {
    mode: Mode,
    plan: Plan,
    epoch_unix_ns: u64,
    hosts: BTreeMap<String, IpAddr>,
    resolve: bool,
    /// The window's events: every process runs them on its own roles.
    schedule: Schedule,
}

/// Makes `plan` this agent's (its servers listen on its address), checks that this process
/// may open what it needs, and loads its certificates and clock.
fn settle(
    plan: &mut Plan,
    epoch_unix_ns: u64,
    shipped: &Shipped,
    settings: &AgentSettings,
) -> anyhow::Result<(Credentials, RunClock)> {
    if let Some(ip) = settings.listen {
        plan.site.listen = crate::engine::scenario::Listen {
            default: ip,
            hosts: BTreeMap::new(),
            sans: BTreeMap::new(),
        };
    }
    super::super::check_share_descriptors(plan)?;
    let creds = Credentials::from_shipped(shipped).context("loading the certificates")?;
    let clock = RunClock::from_unix_epoch(epoch_unix_ns).ahead_by(settings.clock_ahead);
    Ok((creds, clock))
}

/// Runs one share from `Prepare` to `Final` (or an `Abort`).
async fn run_share(
    tx: &Sender,
    inbox: &mut Inbox,
    share: Share,
    shipped: &Shipped,
    settings: &AgentSettings,
) -> anyhow::Result<()> {
    let Share {
        mode,
        mut plan,
        epoch_unix_ns,
        hosts,
        resolve,
        mut schedule,
    } = share;
    let (creds, clock) = settle(&mut plan, epoch_unix_ns, shipped, settings)?;
    crate::sys::allocator::release_free_memory();
    let baseline_rss_bytes = process::rss_bytes().unwrap_or(0);
    let baseline_fds = process::open_fds().unwrap_or(0);
    let _ = process::reset_peak_rss();
    let window = Arc::new(Window::default());
    let mut local = Local::new(&plan, &creds, clock, window.clone());
    tx.send(&FromAgent::Prepared);
    crate::output::progress::note(&format!("{mode} phase: {} role(s) here", plan.roles.len()));
    let mut ticker = tokio::time::interval(STATUS_EVERY);
    let mut started = false;
    let mut sampler: Option<Sampler> = None;
    let mut at_open = (BTreeMap::new(), process::Usage::default());
    // When the announced window opens: the CPU counts from then.
    let mut opens_at: Option<tokio::time::Instant> = None;
    // The window while it is open: its start and length, for the events.
    let mut open: Option<(u64, Duration)> = None;
    let mut counted = Counts::default();
    let mut heard = tokio::time::Instant::now();
    loop {
        let msg = tokio::select! {
            _ = ticker.tick(), if started => {
                tx.send(&FromAgent::Status(local.status()));
                continue;
            }
            _ = sleep_until(next_event(&schedule, open, clock)), if open.is_some() => {
                schedule
                    .fire_next(&mut local.roles, clock, &mut counted.happened)
                    .await?;
                continue;
            }
            _ = sleep_until(opens_at), if opens_at.is_some() => {
                opens_at = None;
                at_open = (local.site.cpu(), process::usage().unwrap_or_default());
                continue;
            }
            // The other branches fire often: silence is measured from the last message,
            // not from when this wait began.
            _ = tokio::time::sleep_until(heard + LOST_AFTER) => bail!(
                "the coordinator went silent (nothing for {}): stopping every role",
                humantime::format_duration(LOST_AFTER)
            ),
            msg = inbox.recv() => match msg {
                Some(msg) => msg?,
                None => bail!("the coordinator closed the connection: stopping every role"),
            },
        };
        heard = tokio::time::Instant::now();
        match msg {
            ToAgent::Ping { t0 } => {
                tx.send(&FromAgent::Pong {
                    t0,
                    t1: clock.now_ns(),
                });
            }
            ToAgent::Start {
                first,
                count,
                directory,
            } => {
                for l in directory {
                    let addr = address_of(&l, &hosts, resolve).await?;
                    local.site.directory.add(&l.host, l.link, addr, l.tls);
                }
                let listeners = local.start(first..first + count).await?;
                started = true;
                tx.send(&FromAgent::Started { listeners });
            }
            ToAgent::Open { start_ns, end_ns } => {
                window.open(start_ns);
                window.close(end_ns);
                open = Some((
                    start_ns,
                    Duration::from_nanos(end_ns.saturating_sub(start_ns)),
                ));
                opens_at = Some(clock.instant_at(start_ns).into());
                let hook_tx = tx.clone();
                let hook: crate::engine::sampler::IntervalHook = Arc::new(move |samples| {
                    hook_tx.send(&FromAgent::Interval {
                        samples: samples.to_vec(),
                    });
                });
                sampler = Some(Sampler::start(local.meters(), clock, start_ns, Some(hook)));
            }
            ToAgent::Close { end_ns } => {
                window.close(end_ns);
                open = None;
                window_figures(&local, &at_open, baseline_fds, &mut counted);
                if let Some(s) = sampler.take() {
                    // Every interval already went out as it was taken.
                    let _ = s.finish().await;
                }
            }
            ToAgent::Collect => {
                let c = local.count().await;
                (counted.servers, counted.server_failures) = (c.servers, c.server_failures);
                counted.watched = c.watched;
                counted.peak_rss_bytes = process::peak_rss_bytes().unwrap_or(0);
                counted.baseline_rss_bytes = baseline_rss_bytes;
                tx.send(&FromAgent::Counted(Box::new(std::mem::take(&mut counted))));
            }
            ToAgent::Finish => {
                let clients = local.stop_clients().await;
                tx.send(&FromAgent::Final { clients });
            }
            ToAgent::Stop => {
                local.stop().await;
                tx.send(&FromAgent::Stopped);
                return Ok(());
            }
            ToAgent::Abort { reason } => {
                crate::output::progress::note(&format!("phase aborted: {reason}"));
                local.shutdown().await;
                return Ok(());
            }
            ToAgent::Bye => {
                local.shutdown().await;
                return Err(anyhow!(
                    "the coordinator ended the run in the middle of a phase"
                ));
            }
            ToAgent::Prepare { .. } => bail!("a second Prepare in the middle of a phase"),
            ToAgent::Heartbeat => {}
        }
    }
}

/// Sleeps until `at` (forever when there is none).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// When the schedule's next event is due in the open window (never, when none is).
fn next_event(
    schedule: &Schedule,
    open: Option<(u64, Duration)>,
    clock: RunClock,
) -> Option<tokio::time::Instant> {
    let (start_ns, duration) = open?;
    let at = schedule.next_due(start_ns, duration)?;
    Some(clock.instant_at(at).into())
}

/// What the window cost here, once it closed: each runtime's and the process's CPU since
/// it opened (`at_open`), and the memory and connections held at its end.
fn window_figures(
    local: &Local<'_>,
    at_open: &(BTreeMap<String, f64>, process::Usage),
    baseline_fds: u64,
    counted: &mut Counts,
) {
    counted.window_cpu = local
        .site
        .cpu()
        .iter()
        .map(|(k, v)| (k.clone(), v - at_open.0.get(k).copied().unwrap_or(0.0)))
        .collect();
    counted.process_cpu = process::usage().unwrap_or_default() - at_open.1;
    counted.steady = super::super::outcome::Steady {
        rss_bytes: process::rss_bytes().unwrap_or(0),
        connections: process::open_fds()
            .unwrap_or(0)
            .saturating_sub(baseline_fds),
    };
}
