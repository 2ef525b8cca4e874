//! Certificates for the TLS tests, made with the openssl CLI: a CA, a server certificate for
//! DNS:localhost signed by it (its key given to the server's owner at 0600, as PostgreSQL
//! demands), and client certificates signed by the same CA.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use tempcluster::TempCluster;

/// EC P-256 keys, unencrypted, valid for two days.
const EC: &str = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2";

/// Turns TLS on in a started cluster: a CA and a server certificate (see
/// [`make_ca_and_server`]) in `tls/` inside the cluster's own directory, so its reaper removes
/// the keys with it, `ssl = on` with them, and a restart to pick them up (the directory exists
/// only once the cluster has started). With `client_ca`, the CA also verifies client
/// certificates (`ssl_ca_file`). Returns the directory, for more certificates signed by the CA.
pub fn enable(cluster: &TempCluster, client_ca: bool) -> PathBuf {
    let base = cluster.data_dir().parent().expect("the cluster's base directory");
    let dir = base.join("tls");
    make_ca_and_server(&dir, cluster.data_dir());
    let mut conf = format!(
        "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
        dir.join("server.crt").display(),
        dir.join("server.key").display()
    );
    if client_ca {
        conf.push_str(&format!("ssl_ca_file = '{}'\n", dir.join("ca.crt").display()));
    }
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(cluster.data_dir().join("postgresql.conf"))
        .expect("postgresql.conf");
    file.write_all(conf.as_bytes()).expect("append the TLS settings");
    cluster
        .stop()
        .unwrap_or_else(|e| panic!("stopping the cluster: {}", super::chain(&e)));
    super::start_again(cluster);
    dir
}

/// Creates `dir` with ca.crt/ca.key and server.crt/server.key for DNS:localhost; the server key
/// belongs to the owner of `data_dir`.
fn make_ca_and_server(dir: &Path, data_dir: &Path) {
    make_ca_and_localhost(dir);
    let key = dir.join("server.key");
    let owner = fs::metadata(data_dir).expect("data directory");
    std::os::unix::fs::chown(&key, Some(owner.uid()), Some(owner.gid())).expect("chown server.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod server.key");
}

/// Creates `dir` with ca.crt/ca.key and server.crt/server.key for DNS:localhost, owned by us
/// (for a server the test runs itself, such as Redis).
pub fn make_ca_and_localhost(dir: &Path) {
    fs::create_dir(dir).expect("create the TLS directory");
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod the TLS directory");
    openssl(dir, &format!("req -x509 {EC} -keyout ca.key -out ca.crt -subj /CN=testca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"));
    sign(
        dir,
        "server",
        "localhost",
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    );
}

/// NAME.crt/NAME.key for common name `cn`, a client certificate signed by the CA in `dir`.
pub fn make_client(dir: &Path, name: &str, cn: &str) {
    sign(
        dir,
        name,
        cn,
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    );
    fs::set_permissions(dir.join(format!("{name}.key")), fs::Permissions::from_mode(0o600))
        .expect("chmod the client key");
}

/// Certificate revocation lists from the CA in `dir` (`openssl ca -gencrl`): `empty.crl`
/// revokes nothing, `revoked.crl` revokes the server certificate; and `crldir/`, holding
/// revoked.crl under its issuer hash (HASH.r0), as `openssl rehash` would name it.
pub fn make_crls(dir: &Path) {
    let conf = "[ca]\ndefault_ca = test_ca\n[test_ca]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
                default_md = sha256\ndefault_crl_days = 2\n";
    fs::write(dir.join("crl-ca.cnf"), conf).expect("CA config");
    fs::write(dir.join("index.txt"), "").expect("index.txt");
    fs::write(dir.join("crlnumber"), "01\n").expect("crlnumber");
    let ca = "ca -config crl-ca.cnf -keyfile ca.key -cert ca.crt";
    openssl(dir, &format!("{ca} -gencrl -out empty.crl"));
    openssl(dir, &format!("{ca} -revoke server.crt"));
    openssl(dir, &format!("{ca} -gencrl -out revoked.crl"));
    let out = Command::new("openssl")
        .args(["crl", "-hash", "-noout", "-in", "revoked.crl"])
        .current_dir(dir)
        .output()
        .expect("openssl crl -hash");
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success() && hash.len() == 8, "openssl crl -hash: {hash}");
    fs::create_dir(dir.join("crldir")).expect("mkdir crldir");
    fs::copy(dir.join("revoked.crl"), dir.join("crldir").join(format!("{hash}.r0"))).expect("copy the CRL");
}

/// A self-signed CA that signed nothing here: the wrong root for every certificate above.
pub fn make_unrelated_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &format!("req -x509 {EC} -keyout {name}.key -out {name}.crt -subj /CN={name} -addext basicConstraints=critical,CA:TRUE"),
    );
}

fn sign(dir: &Path, name: &str, cn: &str, extensions: &str) {
    fs::write(dir.join(format!("{name}.cnf")), extensions).expect("extensions file");
    openssl(
        dir,
        &format!("req {EC} -keyout {name}.key -out {name}.csr -subj /CN={cn}"),
    );
    openssl(
        dir,
        &format!("x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out {name}.crt -days 2 -extfile {name}.cnf"),
    );
}

/// Runs `openssl ARGS` in `dir`; fails the test with openssl's message.
pub fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("openssl not runnable ({e}): these tests make their certificates with it; apt-get install openssl")
        });
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
