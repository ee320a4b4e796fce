//! The machine and build a measurement was taken on.
//!
//! Every report embeds an [`Environment`] so that numbers can be compared
//! with the hardware, kernel, TLS stack and build that produced them. Its
//! JSON form (field names as below) is part of the report format.
//!
//! Detection never fails: whatever cannot be determined is recorded as
//! `"unknown"` (strings), `0` (numbers) or `false` (CPU flags). Hardware facts
//! come from Linux's `/proc` and `uname(2)`; versions and build settings are
//! captured at compile time by `harness/build.rs` from the workspace
//! `Cargo.lock`, cargo's profile and `rustc --version`.

use std::fs;

const UNKNOWN: &str = "unknown";

/// CPU instruction-set extensions that decide how fast TLS record
/// encryption and handshakes run. Each is `true` if the kernel lists the flag
/// in `/proc/cpuinfo` (the flag name is given per field).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CpuFlags {
    /// AES-NI, hardware AES rounds (flag `aes`): AES-GCM at GB/s instead of
    /// a constant-time software AES.
    pub aes_ni: bool,
    /// Vector AES on 256/512-bit registers (flag `vaes`): the widest AES-GCM
    /// code paths in aws-lc.
    pub vaes: bool,
    /// AVX2 256-bit integer vectors (flag `avx2`): used by ChaCha20-Poly1305
    /// and AES-GCM code paths.
    pub avx2: bool,
    /// AVX-512 Foundation (flag `avx512f`).
    pub avx512f: bool,
    /// SHA extensions (flag `sha_ni`): hardware SHA-1/SHA-256, used in
    /// handshakes and certificate verification.
    pub sha_ni: bool,
    /// Carry-less multiplication (flag `pclmulqdq`): the GHASH half of
    /// AES-GCM.
    pub pclmulqdq: bool,
}

impl CpuFlags {
    /// Reads the flags from a whitespace-separated `/proc/cpuinfo` flags
    /// list.
    fn from_flag_list(list: &str) -> Self {
        let mut flags = CpuFlags::default();
        for flag in list.split_whitespace() {
            match flag {
                "aes" => flags.aes_ni = true,
                "vaes" => flags.vaes = true,
                "avx2" => flags.avx2 = true,
                "avx512f" => flags.avx512f = true,
                "sha_ni" => flags.sha_ni = true,
                "pclmulqdq" => flags.pclmulqdq = true,
                _ => {}
            }
        }
        flags
    }
}

/// How and where a measurement was taken. Serialized into every report.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Environment {
    /// CPU model name (`model name` in `/proc/cpuinfo`, first CPU), e.g.
    /// `"AMD EPYC 7B13"`.
    pub cpu_model: String,
    /// Crypto-relevant CPU extensions (`flags` in `/proc/cpuinfo`).
    pub cpu_flags: CpuFlags,
    /// CPUs this process may use (`std::thread::available_parallelism`,
    /// which honours affinity masks and cgroup quotas); 0 if unknown.
    pub cores: usize,
    /// Kernel release (`uname -r`), e.g. `"6.1.0-18-amd64"`.
    pub kernel: String,
    /// Physical memory in bytes (`MemTotal` in `/proc/meminfo`); 0 if
    /// unknown.
    pub memory_bytes: u64,
    /// Host name (`uname -n`).
    pub hostname: String,
    /// Version of the rustls crate vmsbench was built with, e.g. `"0.23.27"`.
    pub rustls_version: String,
    /// rustls crypto provider and its version, e.g. `"aws-lc-rs 1.13.1"`.
    pub crypto_provider: String,
    /// Memory allocator, e.g. `"system (glibc malloc)"`.
    pub allocator: String,
    /// Cargo profile and optimisation level vmsbench was built with, e.g.
    /// `"release (opt-level 3)"` or `"debug (opt-level 0)"`.
    pub build_profile: String,
    /// Compiler that built vmsbench (`rustc --version`), e.g.
    /// `"rustc 1.87.0 (17067e9ac 2025-05-09)"`.
    pub rustc_version: String,
    /// Version of vmsbench itself.
    pub vmsbench_version: String,
    /// Operating system (`std::env::consts::OS`), e.g. `"linux"`.
    pub os: String,
    /// CPU architecture (`std::env::consts::ARCH`), e.g. `"x86_64"`.
    pub arch: String,
    /// Whether the CPU says it runs under a hypervisor (flag `hypervisor` in
    /// `/proc/cpuinfo`): a virtual machine's figures are noisier (other guests, steal time).
    #[serde(default)]
    pub hypervisor: bool,
    /// CPU frequency governor of CPU 0 (`scaling_governor` in sysfs), e.g. `"performance"`
    /// or `"powersave"`; `"unknown"` where the kernel exposes none (most VMs).
    #[serde(default)]
    pub cpu_governor: String,
    /// 1-minute load average when detection ran (`/proc/loadavg`), taken before the run
    /// started: near or above `cores`, other work was competing for the CPUs.
    #[serde(default)]
    pub load_average_1m: f64,
    /// The container runtime this process runs under, when it can tell: `"kubernetes"` (a
    /// pod), `"docker"`, `"podman"`; none on a plain host. A container shares the host's
    /// kernel and, unless limited, its CPUs with its neighbours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// What the CPUs did during the measured windows, all together: the share of their
    /// time stolen by the hypervisor and the frequencies seen (see [`super::cpu`]). Absent
    /// where nothing was measured in windows (capacity, handshakes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub during_windows: Option<super::cpu::CpuWindow>,
}

/// A compile-time value from build.rs, or "unknown".
macro_rules! build_env {
    ($name:literal) => {
        match option_env!($name) {
            Some(v) if !v.is_empty() => v,
            _ => UNKNOWN,
        }
    };
}

impl Environment {
    /// The warning for a debug build, whose `what` (figures, capacities) are not
    /// representative.
    pub(crate) fn debug_build_warning(&self, what: &str) -> Option<String> {
        self.build_profile.starts_with("debug").then(|| {
            format!("this is a debug build: {what} are not representative; build with --release")
        })
    }

    /// Detects the environment of the running process. Never fails: fields
    /// that cannot be determined are `"unknown"`, `0` or `false`.
    pub fn detect() -> Self {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let (cpu_model, cpu_flags) = parse_cpuinfo(&cpuinfo);
        let uname = Uname::get();
        let kernel = uname
            .as_ref()
            .map(|u| u.release.clone())
            .or_else(|| read_trimmed("/proc/sys/kernel/osrelease"))
            .unwrap_or_else(|| UNKNOWN.to_owned());
        let hostname = uname
            .map(|u| u.nodename)
            .or_else(|| read_trimmed("/proc/sys/kernel/hostname"))
            .unwrap_or_else(|| UNKNOWN.to_owned());
        let memory_bytes = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| parse_meminfo_total(&text))
            .unwrap_or(0);
        let aws_lc_rs = build_env!("VMSBENCH_AWS_LC_RS_VERSION");
        Environment {
            cpu_model: cpu_model.unwrap_or_else(|| UNKNOWN.to_owned()),
            cpu_flags,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel,
            memory_bytes,
            hostname,
            rustls_version: build_env!("VMSBENCH_RUSTLS_VERSION").to_owned(),
            crypto_provider: format!("aws-lc-rs {aws_lc_rs}"),
            allocator: super::allocator::NAME.to_owned(),
            build_profile: build_env!("VMSBENCH_BUILD_PROFILE").to_owned(),
            rustc_version: build_env!("VMSBENCH_RUSTC_VERSION").to_owned(),
            vmsbench_version: env!("CARGO_PKG_VERSION").to_owned(),
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            hypervisor: cpuinfo
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim() == "flags").then(|| v.split_whitespace().any(|f| f == "hypervisor"))
                })
                .unwrap_or(false),
            cpu_governor: read_trimmed("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
                .unwrap_or_else(|| UNKNOWN.to_owned()),
            load_average_1m: fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|t| t.split_whitespace().next()?.parse().ok())
                .unwrap_or(0.0),
            container: container(),
            during_windows: None,
        }
    }

    /// One line for the terminal, e.g.
    /// `AMD EPYC (2 cores, AES-NI, VAES, AVX-512) · Linux 6.1.0 · rustls 0.23.27 / aws-lc-rs 1.13.1 · release build`.
    ///
    /// Lists AES-NI (or "no AES-NI", which makes AES-GCM slow), VAES, the
    /// widest AVX and SHA-NI.
    pub fn summary_line(&self) -> String {
        let mut cpu = vec![match self.cores {
            0 => "? cores".to_owned(),
            1 => "1 core".to_owned(),
            n => format!("{n} cores"),
        }];
        let f = &self.cpu_flags;
        cpu.push(if f.aes_ni { "AES-NI" } else { "no AES-NI" }.to_owned());
        if f.vaes {
            cpu.push("VAES".to_owned());
        }
        if f.avx512f {
            cpu.push("AVX-512".to_owned());
        } else if f.avx2 {
            cpu.push("AVX2".to_owned());
        }
        if f.sha_ni {
            cpu.push("SHA-NI".to_owned());
        }
        let os = match self.os.as_str() {
            "linux" => "Linux",
            "macos" => "macOS",
            "windows" => "Windows",
            other => other,
        };
        let profile = self
            .build_profile
            .split_whitespace()
            .next()
            .unwrap_or(UNKNOWN);
        let container = self
            .container
            .as_ref()
            .map(|c| format!(" · in a {c} container"))
            .unwrap_or_default();
        format!(
            "{} ({}) · {os} {} · rustls {} / {} · {profile} build{container}",
            self.cpu_model,
            cpu.join(", "),
            self.kernel,
            self.rustls_version,
            self.crypto_provider,
        )
    }
}

/// The container runtime of this process, from the marks each leaves: Kubernetes sets
/// `KUBERNETES_SERVICE_HOST` in every pod, Docker writes `/.dockerenv`, Podman
/// `/run/.containerenv`.
fn container() -> Option<String> {
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return Some("kubernetes".into());
    }
    if std::path::Path::new("/.dockerenv").exists() {
        return Some("docker".into());
    }
    std::path::Path::new("/run/.containerenv")
        .exists()
        .then(|| "podman".into())
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Model name and flags of the first CPU listed in `/proc/cpuinfo` text.
fn parse_cpuinfo(text: &str) -> (Option<String>, CpuFlags) {
    let field = |names: &[&str]| {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            names.contains(&key.trim()).then(|| value.trim())
        })
    };
    // x86 has "model name"; some other architectures only "Hardware" or
    // "cpu model".
    let model = field(&["model name", "cpu model", "Hardware"])
        .filter(|m| !m.is_empty())
        .map(|m| m.split_whitespace().collect::<Vec<_>>().join(" "));
    // x86 calls the list "flags", arm64 "Features" (where `aes` is also the
    // hardware AES extension).
    let flags =
        field(&["flags", "Features"]).map_or_else(CpuFlags::default, CpuFlags::from_flag_list);
    (model, flags)
}

/// `MemTotal` from `/proc/meminfo` text, in bytes.
fn parse_meminfo_total(text: &str) -> Option<u64> {
    let rest = text.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let mut parts = rest.split_whitespace();
    let kib: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => kib.checked_mul(1024),
        _ => None,
    }
}

/// The parts of `uname(2)` we record.
struct Uname {
    release: String,
    nodename: String,
}

impl Uname {
    #[cfg(unix)]
    fn get() -> Option<Uname> {
        let mut buf = std::mem::MaybeUninit::<libc::utsname>::zeroed();
        // SAFETY: `buf` is writable memory of the size of a `utsname`, which
        // is all uname requires.
        if unsafe { libc::uname(buf.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: uname succeeded and filled the struct; it was zeroed before,
        // which is a valid `utsname` in any case.
        let buf = unsafe { buf.assume_init() };
        let field = |chars: &[libc::c_char]| {
            // The kernel NUL-terminates these fields; stop at the array end
            // regardless.
            let bytes: Vec<u8> = chars
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            let s = String::from_utf8_lossy(&bytes).trim().to_owned();
            (!s.is_empty()).then_some(s)
        };
        Some(Uname {
            release: field(&buf.release)?,
            nodename: field(&buf.nodename).unwrap_or_else(|| UNKNOWN.to_owned()),
        })
    }

    #[cfg(not(unix))]
    fn get() -> Option<Uname> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_this_machine() {
        let env = Environment::detect();
        assert!(
            !env.cpu_model.is_empty() && env.cpu_model != UNKNOWN,
            "{env:?}"
        );
        assert!(env.cores >= 1, "{env:?}");
        assert!(env.rustls_version.starts_with("0.23"), "{env:?}");
        assert!(env.crypto_provider.starts_with("aws-lc-rs 1."), "{env:?}");
        assert!(env.rustc_version.starts_with("rustc "), "{env:?}");
        assert!(
            env.build_profile.starts_with("debug") || env.build_profile.starts_with("release"),
            "{env:?}"
        );
        assert_ne!(env.kernel, UNKNOWN);
        assert_ne!(env.hostname, UNKNOWN);
        assert!(env.memory_bytes > 64 << 20, "{env:?}");
        assert_eq!(env.vmsbench_version, env!("CARGO_PKG_VERSION"));
        #[cfg(target_os = "linux")]
        assert_eq!(env.os, "linux");
    }

    #[test]
    fn json_round_trip() {
        let env = Environment::detect();
        let json = serde_json::to_string(&env).expect("serialize");
        assert!(json.contains("\"cpu_flags\":{\"aes_ni\":"), "{json}");
        let back: Environment = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, env);
    }

    #[test]
    fn parses_cpuinfo() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  7B13 64-Core Processor\n\
                    flags\t\t: fpu sse2 aes pclmulqdq avx2 sha_ni vaes\n\n\
                    processor\t: 1\nmodel name\t: other\nflags\t\t: avx512f\n";
        let (model, flags) = parse_cpuinfo(text);
        assert_eq!(model.as_deref(), Some("AMD EPYC 7B13 64-Core Processor"));
        assert_eq!(
            flags,
            CpuFlags {
                aes_ni: true,
                vaes: true,
                avx2: true,
                avx512f: false,
                sha_ni: true,
                pclmulqdq: true
            }
        );
        // "vaes" alone must not imply "aes".
        assert!(!CpuFlags::from_flag_list("vaes avx512f").aes_ni);
        assert_eq!(parse_cpuinfo(""), (None, CpuFlags::default()));
    }

    #[test]
    fn parses_meminfo() {
        assert_eq!(
            parse_meminfo_total("MemTotal:        8000000 kB\nMemFree: 1 kB\n"),
            Some(8_192_000_000)
        );
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo_total("MemTotal: many kB\n"), None);
    }

    #[test]
    fn summary_line_format() {
        let env = Environment {
            cpu_model: "AMD EPYC".into(),
            cpu_flags: CpuFlags {
                aes_ni: true,
                vaes: true,
                avx2: true,
                avx512f: true,
                sha_ni: false,
                pclmulqdq: true,
            },
            cores: 2,
            kernel: "6.1.0".into(),
            memory_bytes: 8 << 30,
            hostname: "bench".into(),
            rustls_version: "0.23.27".into(),
            crypto_provider: "aws-lc-rs 1.13.1".into(),
            allocator: "system (glibc malloc)".into(),
            build_profile: "release (opt-level 3)".into(),
            rustc_version: "rustc 1.87.0".into(),
            vmsbench_version: "0.1.0".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            hypervisor: true,
            cpu_governor: "unknown".into(),
            container: None,
            load_average_1m: 0.5,
            during_windows: None,
        };
        assert_eq!(
            env.summary_line(),
            "AMD EPYC (2 cores, AES-NI, VAES, AVX-512) · Linux 6.1.0 · rustls 0.23.27 / aws-lc-rs 1.13.1 · release build"
        );
        let slow = Environment {
            cores: 1,
            cpu_flags: CpuFlags::default(),
            build_profile: "debug (opt-level 0)".into(),
            ..env
        };
        assert!(
            slow.summary_line()
                .starts_with("AMD EPYC (1 core, no AES-NI) · "),
            "{}",
            slow.summary_line()
        );
        assert!(slow.summary_line().ends_with("· debug build"));
        // The live summary is one line.
        assert!(!Environment::detect().summary_line().contains('\n'));
    }
}
