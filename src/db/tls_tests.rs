//! Unit tests of the sslmode policies and root certificate files.

use super::*;
use std::path::PathBuf;
use std::time::Duration;

// EC P-256 test certificates valid 2026-2126: a CA, a leaf it signed for db.example.test and
// localhost, and an unrelated self-signed CA.
const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBmTCCAT+gAwIBAgIUcTHRqnLXY31CtqP6TuHgilVs2nswCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOZGJ0b29sIHRlc3QgQ0EwIBcNMjYxMTIxMDUyMDA2WhgPMjEy
NjEwMjgwNTIwMDZaMBkxFzAVBgNVBAMMDmRidG9vbCB0ZXN0IENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAE+bWYY9g8IquMzUKdykJwfViXM1Jub+2dLbws6zYg
TDjT9sT/ywS4uYP3tPyvkOvhYx9zX6t2KcXtAAinq5jPr6NjMGEwHQYDVR0OBBYE
FM34eVtWIzfSwV1XclCgVnXfavaOMB8GA1UdIwQYMBaAFM34eVtWIzfSwV1XclCg
VnXfavaOMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMAoGCCqGSM49
BAMCA0gAMEUCIQDDgXrP3QYFjvVdJRlh8MNuj2KfeHwF8L5CRtHTNljrZAIgUspj
eZHEnnMox9Tynz12XmTsIKwPm8UZxj7GOWhzdAc=
-----END CERTIFICATE-----
";
const LEAF: &str = "-----BEGIN CERTIFICATE-----
MIIBwzCCAWigAwIBAgIUO/GF/NArckDh9qsxIcGbk25JHqwwCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOZGJ0b29sIHRlc3QgQ0EwIBcNMjYxMTIxMDUyMDA2WhgPMjEy
NjEwMjgwNTIwMDZaMBoxGDAWBgNVBAMMD2RiLmV4YW1wbGUudGVzdDBZMBMGByqG
SM49AgEGCCqGSM49AwEHA0IABCkftoYsXOUI05dvNcrfebLuDyRVjwFtTM0mOzJi
DeU1zUtwBO0ih2vSaH4oOKHOMi9pGZ8E3p4w6htl+nx8WjujgYowgYcwJQYDVR0R
BB4wHIIPZGIuZXhhbXBsZS50ZXN0gglsb2NhbGhvc3QwCQYDVR0TBAIwADATBgNV
HSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQUz6gd/Fl//F3uYQeRlXrXJBeknbow
HwYDVR0jBBgwFoAUzfh5W1YjN9LBXVdyUKBWdd9q9o4wCgYIKoZIzj0EAwIDSQAw
RgIhANVO+LitBIzwGWr3zdOCwBZgWeJ948ZSsm3NKrf9qAWZAiEAiI4QNZ4xCSG1
GomDqA2GR3pcs+EvDT8iixPsYwfqpmQ=
-----END CERTIFICATE-----
";
const OTHER: &str = "-----BEGIN CERTIFICATE-----
MIIBfjCCASOgAwIBAgIUJ25a+YCQgHomTin4/DHvX/FfVYgwCgYIKoZIzj0EAwIw
EzERMA8GA1UEAwwIb3RoZXIgQ0EwIBcNMjYxMTIxMDUyMDA2WhgPMjEyNjEwMjgw
NTIwMDZaMBMxETAPBgNVBAMMCG90aGVyIENBMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEwUGm6AwJBWJtQJgYdzoLmz61goWensRmMcNqFabHZkIYj8hZ5C9q9Q8z
rv5gFD/YmzUGYi5Xb/V3eI7/fRoHgaNTMFEwHQYDVR0OBBYEFLZIau5CtQRiNGf6
CKqiTwN5PozwMB8GA1UdIwQYMBaAFLZIau5CtQRiNGf6CKqiTwN5PozwMA8GA1Ud
EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAP2XxthrXMhViD+igfurLTAe
xsnLSENkasTe6JML3mynAiEAjOOVtsnDStCdfvrsOVPBVAOMhEMa+QRR52MfUmU/
llo=
-----END CERTIFICATE-----
";

fn cert(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("test certificate")
}

/// 2030-01-01, inside the test certificates' validity whatever the machine's clock says.
fn now() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(1_893_456_000))
}

fn check(mode: SslMode, rootcert: &Path, leaf: &str, name: &str) -> bool {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verify = policy(mode, Some(rootcert), None).expect("policy").expect("tls on");
    let v = verifier(verify, &[], &provider).expect("verifier");
    let name = ServerName::try_from(name.to_string()).expect("server name");
    v.verify_server_cert(&cert(leaf), &[], &name, &[], now()).is_ok()
}

fn root_file(dir: &tempfile::TempDir, pem: &str) -> PathBuf {
    let path = dir.path().join("root.crt");
    std::fs::write(&path, pem).expect("write root cert");
    path
}

#[test]
fn verify_ca_ignores_the_name_but_not_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let roots = root_file(&dir, CA);
    assert!(check(SslMode::VerifyCa, &roots, LEAF, "db.example.test"));
    assert!(check(SslMode::VerifyCa, &roots, LEAF, "elsewhere.test"));
    assert!(check(SslMode::VerifyCa, &roots, LEAF, "10.1.2.3"));
    assert!(!check(SslMode::VerifyCa, &roots, OTHER, "db.example.test"));
}

#[test]
fn verify_full_checks_chain_and_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let roots = root_file(&dir, CA);
    assert!(check(SslMode::VerifyFull, &roots, LEAF, "db.example.test"));
    assert!(!check(SslMode::VerifyFull, &roots, LEAF, "elsewhere.test"));
    assert!(!check(SslMode::VerifyFull, &roots, OTHER, "db.example.test"));
}

#[test]
fn a_root_file_may_hold_several_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let roots = root_file(&dir, &format!("{OTHER}\n{CA}"));
    assert!(check(SslMode::VerifyFull, &roots, LEAF, "localhost"));
}

#[test]
fn require_verifies_the_ca_when_a_root_cert_exists_as_in_libpq() {
    let dir = tempfile::tempdir().expect("tempdir");
    let roots = root_file(&dir, CA);
    assert!(!check(SslMode::Require, &roots, OTHER, "db.example.test"));
    let home = tempfile::tempdir().expect("tempdir");
    let verify = policy(SslMode::Require, None, Some(home.path())).expect("policy");
    assert!(matches!(verify, Some(Verify::Nothing)), "no root.crt: encrypt only");
    std::fs::create_dir(home.path().join(".postgresql")).expect("mkdir");
    std::fs::write(home.path().join(".postgresql/root.crt"), CA).expect("write");
    let verify = policy(SslMode::Require, None, Some(home.path())).expect("policy");
    assert!(matches!(verify, Some(Verify::Ca(_))));
}

#[test]
fn encrypt_only_accepts_any_certificate() {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let v = verifier(Verify::Nothing, &[], &provider).expect("verifier");
    let name = ServerName::try_from("x.test").expect("name");
    assert!(v.verify_server_cert(&cert(OTHER), &[], &name, &[], now()).is_ok());
    assert!(!v.supported_verify_schemes().is_empty());
}

#[test]
fn modes_build_configs_and_disable_builds_none() {
    assert!(client_config(SslMode::Disable, &Roots::default(), None)
        .expect("disable")
        .is_none());
    for mode in [SslMode::Allow, SslMode::Prefer, SslMode::Require] {
        assert!(
            client_config(mode, &Roots::default(), None).expect("config").is_some(),
            "{mode}"
        );
    }
    let system = Some(Path::new("system"));
    assert!(client_config(SslMode::VerifyFull, &rootcert(system), None)
        .expect("system")
        .is_some());
    let err = client_config(SslMode::VerifyCa, &rootcert(system), None).expect_err("weak");
    assert!(err.to_string().contains("use sslmode=verify-full"), "{err}");
    let err = client_config(SslMode::Require, &rootcert(system), None).expect_err("weak");
    assert!(err.to_string().contains("weak sslmode=require"), "{err}");
    let home = tempfile::tempdir().expect("tempdir");
    for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
        let err = client_config(
            mode,
            &Roots {
                home: Some(home.path()),
                ..Roots::default()
            },
            None,
        )
        .expect_err("no root");
        let root = home.path().join(".postgresql/root.crt");
        let want = format!("root certificate file {} does not exist", root.display());
        assert!(err.to_string().contains(&want), "{err}");
    }
}

#[test]
fn root_file_errors_name_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.crt");
    let err = client_config(SslMode::VerifyFull, &rootcert(Some(&missing)), None).expect_err("missing");
    assert!(err.to_string().contains(&missing.display().to_string()), "{err}");
    let junk = root_file(&dir, "not a certificate\n");
    let err = client_config(SslMode::VerifyCa, &rootcert(Some(&junk)), None).expect_err("junk");
    assert!(matches!(err, TlsError::NoCertificates { .. }), "{err}");
    assert!(err.to_string().contains(&junk.display().to_string()), "{err}");
}

fn rootcert(path: Option<&Path>) -> Roots<'_> {
    Roots {
        sslrootcert: path,
        ..Roots::default()
    }
}
