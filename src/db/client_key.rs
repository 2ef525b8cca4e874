//! The client key's PEM as libpq reads it: a plain key, or a PKCS#8 key encrypted with
//! `sslpassword` (decrypted by the RustCrypto `pkcs8` crate). Where libpq would prompt on a
//! terminal (an encrypted key and no sslpassword) dbtool refuses instead, so cron never hangs.
//! The password appears in no error.

use pkcs8::der::pem::PemLabel;
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::client_cert::ClientCertError;

/// The one command that turns a legacy or otherwise unreadable encrypted key into one dbtool reads.
fn convert_command(path: &str) -> String {
    format!("openssl pkcs8 -topk8 -v2 aes-256-cbc -in {path} -out NEW.key")
}

/// The key in `pem` (read from `path`, shown in errors), decrypted with `password` when encrypted.
pub(super) fn parse(pem: &[u8], path: &str, password: Option<&str>) -> Result<PrivateKeyDer<'static>, ClientCertError> {
    let text = String::from_utf8_lossy(pem);
    let shown = || path.to_string();
    // OpenSSL's pre-PKCS#8 encryption (`openssl rsa -aes256 -traditional`): an RSA/EC block
    // with Proc-Type and DEK-Info headers. No maintained pure-Rust crate reads it.
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(ClientCertError::KeyLegacyEncrypted {
            path: shown(),
            convert: convert_command(path),
        });
    }
    let label = format!("-----BEGIN {}-----", EncryptedPrivateKeyInfo::PEM_LABEL);
    let Some(start) = text.find(&label) else {
        return PrivateKeyDer::from_pem_slice(pem).map_err(|_| ClientCertError::NoKey { path: shown() });
    };
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return Err(ClientCertError::KeyNeedsPassword { path: shown() });
    };
    decrypt(&text[start..], path, password)
}

fn decrypt(block: &str, path: &str, password: &str) -> Result<PrivateKeyDer<'static>, ClientCertError> {
    let end_label = format!("-----END {}-----", EncryptedPrivateKeyInfo::PEM_LABEL);
    let block = block
        .find(&end_label)
        .map_or(block, |at| &block[..at + end_label.len()]);
    let malformed = |cause: String| ClientCertError::KeyMalformed {
        path: path.to_string(),
        cause,
    };
    let (_, der) = pkcs8::der::Document::from_pem(block).map_err(|e| malformed(e.to_string()))?;
    let unsupported = |scheme: String| ClientCertError::KeyScheme {
        path: path.to_string(),
        scheme,
        convert: convert_command(path),
    };
    let info = EncryptedPrivateKeyInfo::try_from(der.as_bytes()).map_err(|e| match scheme_oid(der.as_bytes()) {
        // A well-formed structure whose algorithm pkcs5 does not know (PBES1, PKCS#12 PBE).
        Some(oid) => unsupported(format!("algorithm {oid}")),
        None => malformed(e.to_string()),
    })?;
    use pkcs8::pkcs5::Error as Pkcs5;
    let secret = info.decrypt(password.as_bytes()).map_err(|e| match e {
        // A wrong password shows as bad padding (which pkcs5 0.7 reports as EncryptFailed), or
        // (rarely) as padding that happens to fit around bytes that are not DER.
        pkcs8::Error::EncryptedPrivateKey(Pkcs5::DecryptFailed | Pkcs5::EncryptFailed) | pkcs8::Error::Asn1(_) => {
            ClientCertError::KeyBadPassword { path: path.to_string() }
        }
        other => unsupported(other.to_string()),
    })?;
    // The same check for a plaintext that is DER but not a private key.
    PrivateKeyInfo::try_from(secret.as_bytes())
        .map_err(|_| ClientCertError::KeyBadPassword { path: path.to_string() })?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        secret.as_bytes().to_vec(),
    )))
}

/// The encryption algorithm's OID of an EncryptedPrivateKeyInfo, whatever the algorithm.
fn scheme_oid(der: &[u8]) -> Option<pkcs8::ObjectIdentifier> {
    use pkcs8::der::{Decode, Reader, SliceReader};
    let mut reader = SliceReader::new(der).ok()?;
    let oid = reader.sequence(|r| {
        let algorithm = pkcs8::spki::AlgorithmIdentifierRef::decode(r)?;
        r.read_slice(r.remaining_len())?;
        Ok(algorithm.oid)
    });
    oid.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    const PASSWORD: &str = "Pw7'q z\\x";

    /// Runs `openssl ARGS` in `dir`, the way a user makes these keys.
    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("openssl not runnable ({e}): apt-get install openssl"));
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn read(dir: &Path, name: &str) -> Vec<u8> {
        std::fs::read(dir.join(name)).expect("read the key")
    }

    fn accepted_by_rustls(key: &PrivateKeyDer<'static>) {
        assert!(matches!(key, PrivateKeyDer::Pkcs8(_)));
        rustls::crypto::ring::sign::any_supported_type(key).expect("rustls accepts the decrypted key");
    }

    #[test]
    fn encrypted_pkcs8_rsa_and_ec_keys_decrypt_with_the_right_password_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let pass = format!("pass:{PASSWORD}");
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-aes256",
                "-pass",
                &pass,
                "-out",
                "rsa.key",
            ],
        );
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "ec.plain",
            ],
        );
        openssl(
            d,
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-in",
                "ec.plain",
                "-passout",
                &pass,
                "-out",
                "ec.key",
            ],
        );
        for name in ["rsa.key", "ec.key"] {
            let pem = read(d, name);
            assert!(
                String::from_utf8_lossy(&pem).contains("BEGIN ENCRYPTED PRIVATE KEY"),
                "{name}"
            );
            accepted_by_rustls(&parse(&pem, name, Some(PASSWORD)).expect(name));
            let wrong = parse(&pem, name, Some("not it")).expect_err("a wrong password");
            assert!(
                matches!(wrong, ClientCertError::KeyBadPassword { .. }),
                "{name}: {wrong}"
            );
            let text = wrong.to_string();
            assert!(
                text.contains(name) && text.contains("bad decrypt") && text.contains("sslpassword"),
                "{text}"
            );
            for missing in [None, Some("")] {
                let err = parse(&pem, name, missing).expect_err("no password");
                assert!(err.to_string().contains("no sslpassword was given"), "{err}");
            }
        }
        // libpq ignores sslpassword for a key that is not encrypted.
        accepted_by_rustls(&parse(&read(d, "ec.plain"), "ec.plain", Some(PASSWORD)).expect("plain key"));
    }

    #[test]
    fn legacy_and_unsupported_encryption_is_refused_with_the_command_that_converts_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let pass = format!("pass:{PASSWORD}");
        openssl(d, &["genrsa", "-out", "plain.key", "2048"]);
        openssl(
            d,
            &[
                "rsa",
                "-in",
                "plain.key",
                "-aes256",
                "-traditional",
                "-passout",
                &pass,
                "-out",
                "legacy.key",
            ],
        );
        openssl(
            d,
            &[
                "pkcs8",
                "-topk8",
                "-v1",
                "PBE-SHA1-3DES",
                "-in",
                "plain.key",
                "-passout",
                &pass,
                "-out",
                "pbes1.key",
            ],
        );
        let err = parse(&read(d, "legacy.key"), "legacy.key", Some(PASSWORD)).expect_err("legacy");
        let text = err.to_string();
        let convert = "openssl pkcs8 -topk8 -v2 aes-256-cbc -in legacy.key -out NEW.key";
        assert!(
            text.contains("Proc-Type: 4,ENCRYPTED") && text.contains(convert),
            "{text}"
        );
        // The command named converts it into a key dbtool reads.
        let args: Vec<&str> = convert.split_whitespace().skip(1).collect();
        let mut args = args.clone();
        args.extend(["-passin", &pass, "-passout", &pass]);
        openssl(d, &args);
        accepted_by_rustls(&parse(&read(d, "NEW.key"), "NEW.key", Some(PASSWORD)).expect("converted"));
        let err = parse(&read(d, "pbes1.key"), "pbes1.key", Some(PASSWORD)).expect_err("PBES1");
        assert!(matches!(err, ClientCertError::KeyScheme { .. }), "{err}");
        assert!(err.to_string().contains("-in pbes1.key -out NEW.key"), "{err}");
        for err in [err.to_string(), text] {
            assert!(!err.contains("Pw7"), "the password leaked: {err}");
        }
    }
}
