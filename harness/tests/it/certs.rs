//! `vmsbench certs generate | inspect | check` on real files in temporary directories,
//! through the real flag parsing, plus interoperability with the openssl command.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{path_str, Run};
use p12_keystore::{KeyStore, Pkcs12Archive, Pkcs12ImportPolicy};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tempfile::TempDir;
use vmsbench::commands::certs::run_from_args_with;

const A: &str = "a.vms.test";
const B: &str = "b.vms.test";
const PASSWORD: &str = "correct horse battery staple";
const OPENSSL: &str = "/usr/bin/openssl";

/// The lines `vmsbench certs check` marks as problems or warnings.
impl Run {
    fn problems(&self) -> Vec<&str> {
        self.out
            .lines()
            .filter(|l| l.starts_with("problem: "))
            .collect()
    }

    fn warnings(&self) -> Vec<&str> {
        self.out
            .lines()
            .filter(|l| l.starts_with("warning: "))
            .collect()
    }
}

/// What one `vmsbench certs ARGS…` invocation did.
fn certs<S: AsRef<str>>(args: &[S]) -> Run {
    Run::capture_utf8(|out, err| {
        run_from_args_with(args.iter().map(|a| a.as_ref().to_owned()), out, err)
            .expect("certs ran without an internal error")
    })
}

/// Writes a note that shows even when the test harness captures output (it captures only
/// the print macros).
fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "NOTE: {text}");
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

/// `vmsbench certs generate --hosts HOSTS --out DIR EXTRA…`, whatever its exit code.
fn try_generate(hosts: &str, dir: &Path, extra: &[&str]) -> Run {
    let dir = path_str(dir);
    certs(&[&["generate", "--hosts", hosts, "--out", &dir][..], extra].concat())
}

/// Generates a set for `A` and `B` in `dir` with `key` and the PFX password; it must succeed.
fn generate(dir: &Path, key: &str, extra: &[&str]) -> Run {
    let flags = [&["--key", key, "--pfx-password", PASSWORD][..], extra].concat();
    let run = try_generate(&format!("{A},{B}"), dir, &flags);
    run.assert_code(0, "generate");
    run
}

fn check(target: &Path, host: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "check".to_owned(),
        path_str(target),
        "--host".to_owned(),
        host.to_owned(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    certs(&args)
}

fn inspect_json(files: &[PathBuf], extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["inspect".to_owned(), "--json".to_owned()];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args.extend(files.iter().map(|f| path_str(f)));
    let run = certs(&args);
    run.assert_code(0, "inspect --json");
    let value: Value = serde_json::from_str(&run.out).expect("inspect --json prints JSON");
    value.as_array().expect("a JSON array").clone()
}

fn tempdir() -> TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Generates two hosts with `key`, then checks the files, their modes, inspect and check.
fn generate_and_verify(key: &str, key_type: &str, key_bits: u64) {
    let tmp = tempdir();
    let dir = tmp.path().join("pki");
    let run = generate(&dir, key, &[]);
    assert!(
        !run.out.contains("PRIVATE KEY") && !run.err.contains("PRIVATE KEY"),
        "no private key is printed"
    );
    for name in ["ca.pem", "ca.key.pem"] {
        assert!(dir.join(name).is_file(), "{name} written");
    }
    assert_eq!(mode(&dir.join("ca.key.pem")), 0o600, "CA key mode");
    for host in [A, B] {
        for ext in ["pem", "chain.pem", "key.pem", "pfx"] {
            let path = dir.join(format!("{host}.{ext}"));
            assert!(path.is_file(), "{} written", path.display());
            assert!(
                run.out.contains(&path_str(&path)),
                "summary lists {}",
                path.display()
            );
        }
        assert_eq!(
            mode(&dir.join(format!("{host}.key.pem"))),
            0o600,
            "key mode"
        );
        assert_eq!(mode(&dir.join(format!("{host}.pfx"))), 0o600, "pfx mode");
        assert!(
            run.out.contains(&format!("host {host}: serial ")),
            "summary gives {host}'s serial:\n{}",
            run.out
        );
        let info = inspect_json(&[dir.join(format!("{host}.pem"))], &[]);
        assert_eq!(info.len(), 1);
        assert_eq!(info[0]["subject"], format!("CN={host}"));
        assert_eq!(info[0]["sans"], serde_json::json!([host]));
        assert_eq!(info[0]["key_type"], key_type);
        assert_eq!(info[0]["key_bits"], key_bits);
        assert_eq!(info[0]["eku"], serde_json::json!(["serverAuth"]));
        assert_eq!(info[0]["is_ca"], false);
        let ok = check(&dir, host, &[]);
        ok.assert_code(0, "check of a fresh set");
        assert!(
            ok.out.contains(&format!("OK host {host}")) && ok.out.contains("expires in 36"),
            "{}",
            ok.out
        );
    }
    let ca = inspect_json(&[dir.join("ca.pem")], &[]);
    assert_eq!(ca[0]["is_ca"], true);
    assert_eq!(ca[0]["self_signed"], true);
}

#[test]
fn generate_rsa2048() {
    generate_and_verify("rsa2048", "rsa", 2048);
}

#[test]
fn generate_rsa3072() {
    generate_and_verify("rsa3072", "rsa", 3072);
}

#[test]
fn generate_rsa4096() {
    generate_and_verify("rsa4096", "rsa", 4096);
}

#[test]
fn generate_ecdsa_p256() {
    generate_and_verify("ecdsa-p256", "ecdsa", 256);
}

#[test]
fn generate_ecdsa_p384() {
    generate_and_verify("ecdsa-p384", "ecdsa", 384);
}

#[test]
fn unknown_key_type_is_a_usage_error() {
    let tmp = tempdir();
    let run = try_generate(A, tmp.path(), &["--key", "rsa1024"]);
    run.assert_code(2, "--key rsa1024");
    assert!(
        run.err.contains("ecdsa-p256"),
        "lists the key types: {}",
        run.err
    );
    let run = try_generate("not a host!", tmp.path(), &[]);
    run.assert_code(2, "bad host name");
    assert!(run.err.contains("not a host!"), "{}", run.err);
    let run = try_generate(A, tmp.path(), &["--not-before", "yesterday"]);
    run.assert_code(2, "bad time");
    assert!(run.err.contains("RFC 3339"), "{}", run.err);
    assert!(
        fs::read_dir(tmp.path()).expect("read_dir").next().is_none(),
        "nothing written on usage errors"
    );
}

#[test]
fn refuses_to_overwrite_without_force() {
    let tmp = tempdir();
    let dir = tmp.path().join("pki");
    generate(&dir, "ecdsa-p256", &[]);
    let ca_before = fs::read(dir.join("ca.pem")).expect("ca.pem");

    let again = try_generate(A, &dir, &["--key", "ecdsa-p256"]);
    again.assert_code(2, "second generate without --force");
    assert!(
        again.err.contains(&path_str(&dir.join("ca.pem"))) && again.err.contains("--force"),
        "names the first existing file: {}",
        again.err
    );
    assert_eq!(fs::read(dir.join("ca.pem")).expect("ca.pem"), ca_before);

    // Only a late target exists: it is named, and nothing at all is written.
    let fresh = tmp.path().join("fresh");
    fs::create_dir(&fresh).expect("mkdir");
    let late = fresh.join(format!("{B}.pfx"));
    fs::write(&late, b"keep me").expect("write");
    let run = try_generate(&format!("{A},{B}"), &fresh, &[]);
    run.assert_code(2, "generate onto an existing .pfx");
    assert!(
        run.err.contains(&path_str(&late)),
        "names {}: {}",
        late.display(),
        run.err
    );
    assert!(
        !fresh.join("ca.pem").exists(),
        "nothing written before refusing"
    );
    assert_eq!(fs::read(&late).expect("read"), b"keep me");

    // --force overwrites, and a key file that was world-readable comes out 0600.
    let key = dir.join(format!("{A}.key.pem"));
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let forced = try_generate(
        A,
        &dir,
        &["--key", "ecdsa-p256", "--force", "--pfx-password", PASSWORD],
    );
    forced.assert_code(0, "generate --force");
    assert_ne!(fs::read(dir.join("ca.pem")).expect("ca.pem"), ca_before);
    assert_eq!(mode(&key), 0o600, "a replaced key is created 0600");
    check(&dir, A, &[]).assert_code(0, "check after --force");
}

/// The PKCS#8 DER of a PEM key file.
fn key_der(path: &Path) -> Vec<u8> {
    PrivateKeyDer::from_pem_file(path)
        .expect("PEM key")
        .secret_der()
        .to_vec()
}

fn certs_der(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .expect("PEM file")
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates")
}

#[test]
fn pfx_holds_key_certificate_and_chain() {
    let tmp = tempdir();
    let dir = tmp.path().join("pki");
    generate(&dir, "ecdsa-p256", &["--intermediate"]);
    assert!(dir.join("intermediate.pem").is_file());
    assert_eq!(mode(&dir.join("intermediate.key.pem")), 0o600);
    let pfx = fs::read(dir.join(format!("{A}.pfx"))).expect("pfx");

    let store = KeyStore::from_pkcs12(&pfx, PASSWORD, Pkcs12ImportPolicy::Strict).expect("opens");
    let (alias, chain) = store.private_key_chain().expect("a key with its chain");
    assert_eq!(alias, A);
    assert_eq!(
        chain.key().as_der(),
        key_der(&dir.join(format!("{A}.key.pem")))
    );
    let expected = certs_der(&dir.join(format!("{A}.chain.pem")));
    assert_eq!(expected.len(), 3, "leaf, intermediate, root");
    let got: Vec<&[u8]> = chain.certs().iter().map(|c| c.as_der()).collect();
    let want: Vec<&[u8]> = expected.iter().map(|c| c.as_ref()).collect();
    assert_eq!(got, want, "leaf first, then the intermediate and the root");

    let archive = Pkcs12Archive::from_pkcs12(&pfx, PASSWORD).expect("opens");
    assert_eq!(archive.keys.len(), 1);
    assert!(archive.certs.len() >= 2);

    assert!(
        Pkcs12Archive::from_pkcs12(&pfx, "wrong password").is_err(),
        "a wrong password fails"
    );
    assert!(KeyStore::from_pkcs12(&pfx, "", Pkcs12ImportPolicy::Strict).is_err());

    // Without an intermediate: leaf and root.
    let flat = tmp.path().join("flat");
    generate(&flat, "rsa2048", &[]);
    let pfx = fs::read(flat.join(format!("{B}.pfx"))).expect("pfx");
    let store = KeyStore::from_pkcs12(&pfx, PASSWORD, Pkcs12ImportPolicy::Strict).expect("opens");
    let (_, chain) = store.private_key_chain().expect("a key with its chain");
    assert_eq!(chain.certs().len(), 2);
    assert_eq!(
        chain.key().as_der(),
        key_der(&flat.join(format!("{B}.key.pem")))
    );
}

#[test]
fn generated_pfx_password_is_printed_once_and_works() {
    if std::env::var_os("VMSBENCH_PFX_PASSWORD").is_some() {
        note("VMSBENCH_PFX_PASSWORD is set: skipping the generated-password test");
        return;
    }
    let tmp = tempdir();
    let run = try_generate(A, tmp.path(), &["--key", "ecdsa-p256"]);
    run.assert_code(0, "generate without a password");
    let marker = "PFX password (generated, shown only this once): ";
    let password = run
        .out
        .lines()
        .find_map(|l| l.strip_prefix(marker))
        .expect("the generated password is printed");
    assert!(password.len() >= 20, "a long password");
    assert_eq!(run.out.matches(password).count(), 1, "printed once");
    let pfx = fs::read(tmp.path().join(format!("{A}.pfx"))).expect("pfx");
    Pkcs12Archive::from_pkcs12(&pfx, password).expect("the printed password opens the PFX");
}

#[test]
fn inspect_pem_der_and_pfx() {
    let tmp = tempdir();
    let dir = tmp.path().join("pki");
    generate(
        &dir,
        "ecdsa-p384",
        &["--intermediate", "--san", "recorder", "--san", "10.0.0.5"],
    );
    let sans = serde_json::json!([A, "recorder", "10.0.0.5"]);

    // PEM with three certificates.
    let chain = inspect_json(&[dir.join(format!("{A}.chain.pem"))], &[]);
    assert_eq!(chain.len(), 3);
    assert_eq!(chain[0]["subject"], format!("CN={A}"));
    assert_eq!(chain[0]["sans"], sans);
    assert_eq!(chain[0]["key_type"], "ecdsa");
    assert_eq!(chain[0]["key_bits"], 384);
    assert_eq!(chain[0]["curve"], "P-384");
    assert_eq!(chain[0]["signature_algorithm"], "ecdsa-with-SHA384");
    assert_eq!(chain[0]["issuer"], "CN=vmsbench deployment CA intermediate");
    assert_eq!(chain[1]["is_ca"], true);
    assert_eq!(chain[1]["path_len"], 0);
    assert_eq!(chain[2]["subject"], "CN=vmsbench deployment CA");
    for field in [
        "subject",
        "sans",
        "issuer",
        "serial_hex",
        "not_before",
        "not_after",
        "days_left",
        "key_type",
        "key_bits",
        "eku",
        "is_ca",
        "sha256_fingerprint",
    ] {
        assert!(chain[0].get(field).is_some(), "JSON has {field}");
    }
    let days = chain[0]["days_left"].as_i64().expect("days_left");
    assert!((363..=365).contains(&days), "days_left {days}");
    let fp = chain[0]["sha256_fingerprint"]
        .as_str()
        .expect("fingerprint");
    assert_eq!(fp.len(), 32 * 3 - 1);

    // DER, written here.
    let leaf = certs_der(&dir.join(format!("{A}.pem"))).remove(0);
    let der_path = tmp.path().join("leaf.der");
    fs::write(&der_path, leaf.as_ref()).expect("write DER");
    let der = inspect_json(std::slice::from_ref(&der_path), &[]);
    assert_eq!(der.len(), 1);
    assert_eq!(der[0]["format"], "der");
    assert_eq!(der[0]["subject"], format!("CN={A}"));
    assert_eq!(der[0]["sans"], sans);
    assert_eq!(der[0]["sha256_fingerprint"], chain[0]["sha256_fingerprint"]);

    // PKCS#12 with the password.
    let pfx_path = dir.join(format!("{A}.pfx"));
    let pfx = inspect_json(std::slice::from_ref(&pfx_path), &["--password", PASSWORD]);
    assert_eq!(pfx.len(), 3);
    assert_eq!(pfx[0]["format"], "pkcs12");
    let leaf_info = pfx
        .iter()
        .find(|c| c["subject"] == format!("CN={A}"))
        .expect("the leaf is in the PFX");
    assert_eq!(leaf_info["sans"], sans);
    assert_eq!(leaf_info["key_type"], "ecdsa");

    // Text output, several files at once.
    let text = certs(&[
        "inspect",
        &path_str(&der_path),
        &path_str(&pfx_path),
        "--password",
        PASSWORD,
    ]);
    text.assert_code(0, "inspect text");
    assert!(
        text.out.contains(&format!("subject:   CN={A}")),
        "{}",
        text.out
    );
    assert!(text.out.contains("recorder, 10.0.0.5"), "{}", text.out);
    assert!(text.out.contains("ecdsa P-384 (384 bits)"), "{}", text.out);
    assert!(text.out.contains("1 private key(s)"), "{}", text.out);
    assert!(!text.out.contains("PRIVATE KEY"));

    // The SANs are honoured by check.
    check(&dir, A, &[]).assert_code(0, "check the FQDN");
    let cert = dir.join(format!("{A}.chain.pem"));
    check(&cert, "recorder", &[]).assert_code(0, "check the short name");
    check(&cert, "10.0.0.5", &[]).assert_code(0, "check the IP address");
}

#[test]
fn inspect_rejects_unusable_files() {
    let tmp = tempdir();
    let dir = tmp.path().join("pki");
    generate(&dir, "ecdsa-p256", &[]);
    let garbage = tmp.path().join("garbage.pem");
    fs::write(&garbage, b"this is not a certificate\n").expect("write");
    let run = certs(&["inspect", &path_str(&garbage)]);
    run.assert_code(2, "garbage");
    assert!(
        run.err.contains(&path_str(&garbage)),
        "names the file: {}",
        run.err
    );

    let missing = tmp.path().join("missing.pem");
    let run = certs(&[
        "inspect",
        &path_str(&missing),
        &path_str(&dir.join("ca.pem")),
    ]);
    run.assert_code(2, "missing file");
    assert!(run.err.contains(&path_str(&missing)), "{}", run.err);
    assert!(
        run.out.contains("CN=vmsbench deployment CA"),
        "good files still shown"
    );

    let key = dir.join(format!("{A}.key.pem"));
    let run = certs(&["inspect", &path_str(&key)]);
    run.assert_code(2, "a key file");
    assert!(
        run.err.contains("private key, not a certificate"),
        "{}",
        run.err
    );
    assert!(!run.out.contains("PRIVATE KEY") && !run.err.contains("PRIVATE KEY"));

    let pfx = dir.join(format!("{A}.pfx"));
    if std::env::var_os("VMSBENCH_PFX_PASSWORD").is_none() {
        let run = certs(&["inspect", &path_str(&pfx)]);
        run.assert_code(2, "PFX without a password");
        assert!(run.err.contains("--password"), "{}", run.err);
    }
    let run = certs(&["inspect", &path_str(&pfx), "--password", "wrong"]);
    run.assert_code(2, "PFX with a wrong password");
    assert!(run.err.contains("wrong password"), "{}", run.err);
}

/// A fresh set for `A` and `B` in `tmp/name`.
fn set(tmp: &TempDir, name: &str, extra: &[&str]) -> PathBuf {
    let dir = tmp.path().join(name);
    generate(&dir, "ecdsa-p256", extra);
    dir
}

fn assert_one_problem(run: &Run, what: &str, needle: &str) {
    run.assert_code(1, what);
    let problems = run.problems();
    assert_eq!(problems.len(), 1, "{what}: one problem line:\n{}", run.out);
    assert!(
        problems[0].contains(needle),
        "{what}: {needle:?} in {:?}",
        problems[0]
    );
}

#[test]
fn check_healthy_and_expiry() {
    let tmp = tempdir();
    let dir = set(&tmp, "ok", &[]);
    let run = check(&dir, A, &[]);
    run.assert_code(0, "healthy");
    assert!(
        run.problems().is_empty() && run.warnings().is_empty(),
        "{}",
        run.out
    );
    check(&dir, A, &["--strict"]).assert_code(0, "healthy, strict");

    let expired = set(
        &tmp,
        "expired",
        &[
            "--not-before",
            "2020-01-01T00:00:00Z",
            "--not-after",
            "2020-06-01T00:00:00Z",
        ],
    );
    assert_one_problem(&check(&expired, A, &[]), "expired", "expired on 2020-06-01");

    let future = set(
        &tmp,
        "future",
        &["--not-before", "2100-01-01T00:00:00Z", "--days", "30"],
    );
    assert_one_problem(
        &check(&future, A, &[]),
        "not yet valid",
        "not valid before 2100-01-01",
    );

    let soon = set(&tmp, "soon", &["--days", "10"]);
    let run = check(&soon, A, &[]);
    run.assert_code(0, "expiring within --warn-days");
    assert_eq!(run.warnings().len(), 1, "{}", run.out);
    assert!(
        run.warnings()[0].contains("within --warn-days 30"),
        "{}",
        run.out
    );
    assert!(run.out.contains(&format!("OK host {A}")));
    let run = check(&soon, A, &["--strict"]);
    run.assert_code(1, "expiring, --strict");
    assert!(run.out.contains("--strict"), "{}", run.out);
    let run = check(&soon, A, &["--warn-days", "5"]);
    run.assert_code(0, "--warn-days 5");
    assert!(run.warnings().is_empty(), "{}", run.out);
}

#[test]
fn check_wrong_host_and_untrusted_ca() {
    let tmp = tempdir();
    let dir = set(&tmp, "one", &[]);
    let other = set(&tmp, "other", &["--ca-name", "someone else's CA"]);

    let cert = dir.join(format!("{A}.pem"));
    assert_one_problem(
        &check(&cert, "c.vms.test", &[]),
        "wrong host",
        "c.vms.test is not among",
    );
    assert_one_problem(&check(&cert, "a", &[]), "short name", "short name");

    let run = check(&dir, A, &["--ca", &path_str(&other.join("ca.pem"))]);
    assert_one_problem(&run, "untrusted CA", "not issued by a CA");

    // A certificate issued by an intermediate, presented without it.
    let inter = set(&tmp, "inter", &["--intermediate"]);
    check(&inter, A, &[]).assert_code(0, "full chain");
    assert_one_problem(
        &check(&inter.join(format!("{A}.pem")), A, &[]),
        "missing intermediate",
        "chain is incomplete",
    );

    // Unusable input is exit code 2, not a problem.
    check(&dir, "c.vms.test", &[]).assert_code(2, "no certificate for the host in DIR");
    check(&tmp.path().join("nowhere"), A, &[]).assert_code(2, "no such directory");
    check(&dir, "bad host!", &[]).assert_code(2, "invalid host name");
}

#[test]
fn check_private_key_problems() {
    let tmp = tempdir();
    let dir = set(&tmp, "keys", &[]);
    let key_a = dir.join(format!("{A}.key.pem"));
    let key_b = dir.join(format!("{B}.key.pem"));

    // Swapped keys.
    let a = fs::read(&key_a).expect("read");
    let b = fs::read(&key_b).expect("read");
    fs::write(&key_a, &b).expect("write");
    fs::write(&key_b, &a).expect("write");
    assert_one_problem(&check(&dir, A, &[]), "swapped key", "does not belong");
    assert_one_problem(&check(&dir, B, &[]), "swapped key", "does not belong");
    fs::write(&key_a, &a).expect("write");
    check(&dir, A, &[]).assert_code(0, "key restored");

    // Group/world readable: a warning.
    fs::set_permissions(&key_a, fs::Permissions::from_mode(0o644)).expect("chmod");
    let run = check(&dir, A, &[]);
    run.assert_code(0, "mode 644");
    assert!(
        run.warnings().iter().any(|w| w.contains("mode 644")),
        "{}",
        run.out
    );
    check(&dir, A, &["--strict"]).assert_code(1, "mode 644, --strict");

    // Unreadable.
    fs::set_permissions(&key_a, fs::Permissions::from_mode(0o000)).expect("chmod");
    let run = check(&dir, A, &[]);
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        note(
            "running as root, which can read a mode-000 file: the 'key unreadable' \
             assertion is skipped",
        );
        run.assert_code(0, "mode 000 as root");
    } else {
        assert_one_problem(&run, "unreadable key", "permission denied");
    }
    fs::set_permissions(&key_a, fs::Permissions::from_mode(0o600)).expect("chmod");

    // Missing.
    fs::remove_file(&key_a).expect("rm");
    assert_one_problem(&check(&dir, A, &[]), "missing key", "is missing");

    // Not a key at all.
    fs::write(&key_a, b"garbage").expect("write");
    assert_one_problem(&check(&dir, A, &[]), "garbage key", "no private key");
}

/// Whether /usr/bin/openssl is installed; if not, notes that `test` is skipped.
fn have_openssl(test: &str) -> bool {
    let present = Path::new(OPENSSL).exists();
    if !present {
        note(&format!(
            "SKIPPING {test}: /usr/bin/openssl is not installed"
        ));
    }
    present
}

fn openssl(args: &[&str]) -> (bool, String) {
    let output = Command::new(OPENSSL)
        .args(args)
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn openssl_interop() {
    if !have_openssl("the openssl interop test") {
        return;
    }
    let tmp = tempdir();
    for (name, key, extra) in [
        ("rsa", "rsa2048", vec!["--intermediate"]),
        ("ec", "ecdsa-p256", vec!["--intermediate", "--pfx-legacy"]),
        ("flat", "ecdsa-p384", vec![]),
    ] {
        let dir = tmp.path().join(name);
        generate(&dir, key, &extra);
        let ca = path_str(&dir.join("ca.pem"));
        let leaf = path_str(&dir.join(format!("{A}.pem")));
        let mut verify = vec!["verify", "-CAfile", &ca];
        let inter = path_str(&dir.join("intermediate.pem"));
        if extra.contains(&"--intermediate") {
            verify.extend(["-untrusted", &inter]);
        }
        verify.extend(["-purpose", "sslserver", &leaf]);
        let (ok, text) = openssl(&verify);
        assert!(
            ok && text.contains(": OK"),
            "{name}: openssl verify: {text}"
        );

        let (ok, text) = openssl(&["x509", "-in", &leaf, "-noout", "-checkhost", A]);
        assert!(
            ok && text.contains("does match"),
            "{name}: openssl -checkhost: {text}"
        );
        let (_, text) = openssl(&["x509", "-in", &leaf, "-noout", "-checkhost", B]);
        assert!(text.contains("does NOT match"), "{name}: {text}");

        // The fingerprint inspect prints is the one openssl computes.
        let (ok, text) = openssl(&["x509", "-in", &leaf, "-noout", "-fingerprint", "-sha256"]);
        assert!(ok, "{text}");
        let info = inspect_json(&[dir.join(format!("{A}.pem"))], &[]);
        let fp = info[0]["sha256_fingerprint"].as_str().expect("fingerprint");
        assert!(text.contains(fp), "{name}: {fp} in {text}");
        let serial = info[0]["serial_hex"].as_str().expect("serial");
        let (_, text) = openssl(&["x509", "-in", &leaf, "-noout", "-serial"]);
        assert!(
            text.to_ascii_lowercase().contains(serial),
            "{name}: serial {serial} in {text}"
        );

        // openssl 3 reads the PFX (AES-256 + SHA-256 MAC, or 3DES + SHA-1 with
        // --pfx-legacy) without -legacy.
        let pfx = path_str(&dir.join(format!("{A}.pfx")));
        let pass = format!("pass:{PASSWORD}");
        let (ok, text) = openssl(&["pkcs12", "-in", &pfx, "-passin", &pass, "-nokeys"]);
        assert!(ok, "{name}: openssl pkcs12 -nokeys: {text}");
        let want = if extra.contains(&"--intermediate") {
            3
        } else {
            2
        };
        assert_eq!(
            text.matches("BEGIN CERTIFICATE").count(),
            want,
            "{name}: certificates in the PFX"
        );
        let (ok, text) = openssl(&[
            "pkcs12", "-in", &pfx, "-passin", &pass, "-nocerts", "-nodes",
        ]);
        assert!(
            ok && text.contains("PRIVATE KEY"),
            "{name}: openssl reads the key from the PFX"
        );
        let (ok, _) = openssl(&["pkcs12", "-in", &pfx, "-passin", "pass:wrong", "-nokeys"]);
        assert!(!ok, "{name}: openssl refuses a wrong password");

        // And the key is one openssl can use.
        let key = path_str(&dir.join(format!("{A}.key.pem")));
        let (ok, text) = openssl(&["pkey", "-in", &key, "-noout"]);
        assert!(ok, "{name}: openssl pkey: {text}");
    }
}

/// A certificate made by openssl with an RSA-1024 key: `check` calls that a problem.
#[test]
fn check_flags_small_rsa_keys() {
    if !have_openssl("the RSA-1024 test") {
        return;
    }
    let tmp = tempdir();
    let dir = set(&tmp, "ca", &[]);
    let key = dir.join("weak.key.pem");
    let csr = dir.join("weak.csr");
    let cert = dir.join("weak.pem");
    let ext = dir.join("ext.cnf");
    fs::write(
        &ext,
        "subjectAltName=DNS:weak.vms.test\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write");
    let (ok, text) = openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:1024",
        "-nodes",
        "-keyout",
        &path_str(&key),
        "-out",
        &path_str(&csr),
        "-subj",
        "/CN=weak.vms.test",
    ]);
    assert!(ok, "{text}");
    let (ok, text) = openssl(&[
        "x509",
        "-req",
        "-in",
        &path_str(&csr),
        "-CA",
        &path_str(&dir.join("ca.pem")),
        "-CAkey",
        &path_str(&dir.join("ca.key.pem")),
        "-CAcreateserial",
        "-days",
        "30",
        "-sha256",
        "-extfile",
        &path_str(&ext),
        "-out",
        &path_str(&cert),
    ]);
    assert!(ok, "{text}");
    let run = check(&cert, "weak.vms.test", &[]);
    run.assert_code(1, "RSA-1024");
    assert!(
        run.problems().iter().any(|p| p.contains("1024 bits")),
        "{}",
        run.out
    );
    let info = inspect_json(&[cert], &[]);
    assert_eq!(info[0]["key_bits"], 1024);
}
