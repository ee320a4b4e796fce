//! Resource usage of this process: CPU time, resident memory and open file
//! descriptors.
//!
//! Linux is the only supported target: memory and descriptor counts come from
//! `/proc/self`, CPU time from `getrusage(2)`. Elsewhere the `/proc` readers
//! return an [`io::Error`] (and [`usage`] one of kind
//! [`io::ErrorKind::Unsupported`] on non-Unix systems). Errors carry the file
//! or call that failed in their message.

use std::fs;
use std::io;
use std::ops::Sub;

/// CPU time consumed by this process (all threads), as reported by
/// `getrusage(RUSAGE_SELF)`.
///
/// Snapshots are cumulative since process start; subtract two of them
/// (`later - earlier`) to get the CPU time spent in between.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Time spent executing in user mode, in seconds.
    pub user_s: f64,
    /// Time spent executing in the kernel on behalf of the process, in seconds.
    pub sys_s: f64,
}

impl Usage {
    /// User plus system CPU time, in seconds.
    pub fn total_s(&self) -> f64 {
        self.user_s + self.sys_s
    }
}

impl std::ops::Add for Usage {
    type Output = Usage;

    fn add(self, o: Usage) -> Usage {
        Usage {
            user_s: self.user_s + o.user_s,
            sys_s: self.sys_s + o.sys_s,
        }
    }
}

impl Sub for Usage {
    type Output = Usage;

    /// The CPU time spent between two snapshots: `later - earlier`.
    fn sub(self, earlier: Usage) -> Usage {
        Usage {
            user_s: self.user_s - earlier.user_s,
            sys_s: self.sys_s - earlier.sys_s,
        }
    }
}

/// Reads the CPU time used so far by this process (all its threads, not
/// including waited-for children).
#[cfg(unix)]
pub(crate) fn usage() -> io::Result<Usage> {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` points to writable memory large enough for a `rusage`,
    // which is all getrusage requires of its second argument.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("getrusage(RUSAGE_SELF) failed: {err}"),
        ));
    }
    // SAFETY: getrusage returned 0, so it filled in the struct (which was
    // zero-initialised to begin with, a valid bit pattern for `rusage`).
    let ru = unsafe { ru.assume_init() };
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Ok(Usage {
        user_s: secs(ru.ru_utime),
        sys_s: secs(ru.ru_stime),
    })
}

/// Reads the CPU time used so far by this process: unsupported on this OS.
#[cfg(not(unix))]
pub fn usage() -> io::Result<Usage> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "process CPU usage is only implemented on Unix (getrusage)",
    ))
}

const STATUS: &str = "/proc/self/status";

/// Current resident set size of this process in bytes (`VmRSS` in
/// `/proc/self/status`).
pub(crate) fn rss_bytes() -> io::Result<u64> {
    status_field_bytes("VmRSS")
}

/// Peak resident set size of this process in bytes (`VmHWM`, the "high water
/// mark", in `/proc/self/status`): the largest RSS since process start or
/// since the last [`reset_peak_rss`].
pub(crate) fn peak_rss_bytes() -> io::Result<u64> {
    status_field_bytes("VmHWM")
}

/// Resets the peak resident set size ([`peak_rss_bytes`]) to the current
/// RSS, so the peak of one measurement phase can be taken on its own.
///
/// Writes `5` to `/proc/self/clear_refs` (Linux 4.0 and later).
pub(crate) fn reset_peak_rss() -> io::Result<()> {
    const CLEAR_REFS: &str = "/proc/self/clear_refs";
    fs::write(CLEAR_REFS, b"5").map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "resetting peak RSS by writing \"5\" to {CLEAR_REFS} (needs Linux >= 4.0): {e}"
            ),
        )
    })
}

/// This process's limit on open file descriptors: `(soft, hard)`.
pub(crate) fn fd_limits() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid out-pointer for getrlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("getrlimit(RLIMIT_NOFILE): {e}"),
        ));
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Raises the soft limit on open file descriptors to the hard limit (a process may do so
/// without privileges); returns the limits in force afterwards, `(soft, hard)`.
pub(crate) fn raise_fd_limit() -> io::Result<(u64, u64)> {
    let (soft, hard) = fd_limits()?;
    if soft < hard {
        let lim = libc::rlimit {
            rlim_cur: hard,
            rlim_max: hard,
        };
        // SAFETY: `lim` is a valid rlimit; setrlimit only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("setrlimit(RLIMIT_NOFILE): {e}"),
            ));
        }
    }
    fd_limits()
}

/// Number of file descriptors this process has open (entries of `/proc/self/fd`), not
/// counting the one used to list that directory.
pub(crate) fn open_fds() -> io::Result<u64> {
    const FD_DIR: &str = "/proc/self/fd";
    let context = |e: io::Error| io::Error::new(e.kind(), format!("listing {FD_DIR}: {e}"));
    let mut count = 0u64;
    for entry in fs::read_dir(FD_DIR).map_err(context)? {
        entry.map_err(context)?;
        count += 1;
    }
    Ok(count.saturating_sub(1))
}

/// Reads `field` (a `kB` value) from `/proc/self/status`, in bytes.
fn status_field_bytes(field: &str) -> io::Result<u64> {
    let text = fs::read_to_string(STATUS)
        .map_err(|e| io::Error::new(e.kind(), format!("reading {STATUS}: {e}")))?;
    parse_status_kib(&text, field)
        .map(|kib| kib.saturating_mul(1024))
        .map_err(|msg| io::Error::new(io::ErrorKind::InvalidData, format!("{STATUS}: {msg}")))
}

/// Finds a line `"<field>:   1234 kB"` in the text of a `/proc/<pid>/status`
/// file and returns the number (the kernel's "kB" are KiB).
fn parse_status_kib(text: &str, field: &str) -> Result<u64, String> {
    let line = text
        .lines()
        .find_map(|line| {
            line.strip_prefix(field)
                .and_then(|rest| rest.strip_prefix(':'))
        })
        .ok_or_else(|| format!("no {field} line"))?;
    let mut parts = line.split_whitespace();
    let value = parts
        .next()
        .ok_or_else(|| format!("{field} has no value"))?
        .parse::<u64>()
        .map_err(|e| format!("{field} value {:?} is not a number: {e}", line.trim()))?;
    match parts.next() {
        Some("kB") => Ok(value),
        other => Err(format!(
            "{field} has unit {other:?}, expected \"kB\" (line {:?})",
            line.trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_usage_grows_with_work() {
        let before = usage().expect("getrusage");
        assert!(before.user_s >= 0.0 && before.sys_s >= 0.0);
        // Burn some CPU in user space.
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(100) {
            for i in 0..10_000u64 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
        }
        let after = usage().expect("getrusage");
        let spent = after - before;
        assert!(spent.total_s() > 0.0, "no CPU time recorded: {spent:?}");
        assert!(spent.user_s >= 0.0 && spent.sys_s >= 0.0, "{spent:?}");
        assert!((spent.total_s() - (spent.user_s + spent.sys_s)).abs() < 1e-12);
    }

    #[test]
    fn usage_arithmetic() {
        let a = Usage {
            user_s: 3.0,
            sys_s: 1.5,
        };
        let b = Usage {
            user_s: 1.0,
            sys_s: 0.5,
        };
        assert_eq!(
            a - b,
            Usage {
                user_s: 2.0,
                sys_s: 1.0
            }
        );
        assert_eq!(a.total_s(), 4.5);
    }

    #[test]
    fn rss_is_plausible() {
        let rss = rss_bytes().expect("VmRSS");
        let peak = peak_rss_bytes().expect("VmHWM");
        assert!(rss > 1 << 20, "RSS below 1 MiB: {rss}");
        assert!(peak >= rss / 2, "peak {peak} far below RSS {rss}");
    }

    #[test]
    fn peak_rss_drops_after_reset() {
        const SIZE: usize = 64 << 20;
        {
            // Touch every page (vec![1; n] writes them, unlike calloc'd zeros).
            let buf = vec![1u8; SIZE];
            std::hint::black_box(&buf);
        } // freed: glibc returns an allocation this large to the kernel
        let before = peak_rss_bytes().expect("VmHWM");
        let rss = rss_bytes().expect("VmRSS");
        assert!(
            before >= rss + (48 << 20),
            "peak {before} should include the 64 MiB buffer above RSS {rss}"
        );
        reset_peak_rss().expect("clear_refs");
        let after = peak_rss_bytes().expect("VmHWM");
        assert!(
            after + (32 << 20) < before,
            "peak did not drop after reset: before {before}, after {after}"
        );
    }

    #[test]
    fn parses_status_lines() {
        let text = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nVmRSSX: 1 kB\n";
        assert_eq!(parse_status_kib(text, "VmRSS"), Ok(1024));
        assert_eq!(parse_status_kib(text, "VmHWM"), Ok(2048));
        assert!(parse_status_kib(text, "VmSwap").is_err());
        assert!(parse_status_kib("VmRSS: lots kB\n", "VmRSS").is_err());
        assert!(parse_status_kib("VmRSS: 12 MB\n", "VmRSS").is_err());
        assert!(parse_status_kib("VmRSS:\n", "VmRSS").is_err());
    }
}
