//! Records how vmsbench was built, for `vmsbench::environment`:
//!
//! - `VMSBENCH_RUSTLS_VERSION`, `VMSBENCH_AWS_LC_RS_VERSION`: the versions
//!   locked in the workspace `Cargo.lock` (the rustls that vmsbench depends on,
//!   and the aws-lc-rs that rustls depends on);
//! - `VMSBENCH_BUILD_PROFILE`: `PROFILE` and `OPT_LEVEL`, e.g.
//!   `release (opt-level 3)`;
//! - `VMSBENCH_RUSTC_VERSION`: the output of `$RUSTC --version`.
//!
//! Anything that cannot be determined becomes `unknown`; this script never
//! fails the build.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const UNKNOWN: &str = "unknown";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");

    let packages = match env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) => {
            let lock = PathBuf::from(dir).join("..").join("Cargo.lock");
            println!("cargo:rerun-if-changed={}", lock.display());
            std::fs::read_to_string(&lock)
                .map(|text| parse_lock(&text))
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    let rustls = dependency_version(&packages, "vmsbench", None, "rustls");
    let aws_lc_rs = dependency_version(&packages, "rustls", rustls.as_deref(), "aws-lc-rs");
    emit("VMSBENCH_RUSTLS_VERSION", rustls.as_deref());
    emit("VMSBENCH_AWS_LC_RS_VERSION", aws_lc_rs.as_deref());

    let profile = env::var("PROFILE")
        .ok()
        .map(|profile| match env::var("OPT_LEVEL") {
            Ok(level) => format!("{profile} (opt-level {level})"),
            Err(_) => profile,
        });
    emit("VMSBENCH_BUILD_PROFILE", profile.as_deref());

    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok());
    emit("VMSBENCH_RUSTC_VERSION", rustc_version.as_deref());
}

fn emit(key: &str, value: Option<&str>) {
    // A rustc-env value must stay on one line.
    let value = value
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| UNKNOWN.to_owned());
    println!("cargo:rustc-env={key}={value}");
}

/// One `[[package]]` of a Cargo.lock.
#[derive(Default)]
struct Package {
    name: String,
    version: String,
    /// Entries of `dependencies = [...]`: `"name"` or `"name version"` or
    /// `"name version (source)"`.
    dependencies: Vec<String>,
}

/// Line-scanning parser for the parts of Cargo.lock (format v3/v4) we need.
fn parse_lock(text: &str) -> Vec<Package> {
    let mut packages = Vec::new();
    let mut current: Option<Package> = None;
    let mut in_deps = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') && !in_deps {
            if let Some(p) = current.take() {
                packages.push(p);
            }
            if line == "[[package]]" {
                current = Some(Package::default());
            }
            continue;
        }
        let Some(pkg) = current.as_mut() else {
            continue;
        };
        if in_deps {
            if line.starts_with(']') {
                in_deps = false;
            } else if let Some(dep) = quoted(line) {
                pkg.dependencies.push(dep.to_owned());
            }
        } else if let Some(value) = line.strip_prefix("name = ") {
            pkg.name = quoted(value).unwrap_or_default().to_owned();
        } else if let Some(value) = line.strip_prefix("version = ") {
            pkg.version = quoted(value).unwrap_or_default().to_owned();
        } else if let Some(rest) = line.strip_prefix("dependencies = [") {
            // Usually one entry per line; tolerate `[ "a", "b" ]` too.
            in_deps = !rest.contains(']');
            pkg.dependencies
                .extend(rest.split('"').skip(1).step_by(2).map(str::to_owned));
        }
    }
    if let Some(p) = current {
        packages.push(p);
    }
    packages
}

/// The text between the first pair of double quotes in `s`.
fn quoted(s: &str) -> Option<&str> {
    let start = s.find('"')? + 1;
    let len = s[start..].find('"')?;
    Some(&s[start..start + len])
}

/// The locked version of `dep` as used by package `parent` (of version
/// `parent_version`, if known). Falls back to the highest locked version of
/// `dep` when the parent or its dependency entry is not found.
fn dependency_version(
    packages: &[Package],
    parent: &str,
    parent_version: Option<&str>,
    dep: &str,
) -> Option<String> {
    let candidates: Vec<&Package> = packages.iter().filter(|p| p.name == dep).collect();
    let from_parent = packages
        .iter()
        .find(|p| p.name == parent && parent_version.is_none_or(|v| p.version == v))
        .and_then(|p| {
            p.dependencies
                .iter()
                .find(|d| d.split_whitespace().next() == Some(dep))
        })
        .and_then(|entry| match entry.split_whitespace().nth(1) {
            // "name version": the lock names the version because several exist.
            Some(version) => Some(version.to_owned()),
            // "name": exactly one version of it is locked.
            None => candidates.first().map(|p| p.version.clone()),
        });
    from_parent.or_else(|| {
        candidates
            .iter()
            .max_by_key(|p| version_key(&p.version))
            .map(|p| p.version.clone())
    })
}

/// Numeric components of a version, for ordering (`1.10.0` > `1.9.3`).
fn version_key(version: &str) -> Vec<u64> {
    version
        .split(['.', '-', '+'])
        .map_while(|part| part.parse().ok())
        .collect()
}
