//! The client-certificate tests' cluster: `hostssl ... cert` for CERT_USER, TLS with the
//! suite's CA, and the client keys every case uses (plain, world-readable, encrypted PKCS#8,
//! legacy-encrypted), with a service file giving the encrypted key's sslpassword.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempcluster::{ClusterOptions, TempCluster};
use tokio::sync::OnceCell;

/// The role the client certificate is issued for (its CN); it may log in by certificate only.
pub const CERT_USER: &str = "cert_user";

pub struct CertCluster {
    pub cluster: TempCluster,
    tls_dir: PathBuf,
}

impl CertCluster {
    pub fn file(&self, name: &str) -> String {
        self.tls_dir.join(name).display().to_string()
    }
}

pub async fn cert_cluster() -> &'static CertCluster {
    static CLUSTER: OnceCell<CertCluster> = OnceCell::const_new();
    CLUSTER.get_or_init(start).await
}

async fn start() -> CertCluster {
    let cluster = super::own_cluster(ClusterOptions {
        hba_prepend: vec![format!("hostssl all {CERT_USER} 127.0.0.1/32 cert")],
        ..Default::default()
    });
    let tls_dir = super::tls::enable(&cluster, true);
    make_client_certificates(&tls_dir);
    let admin = super::connect(&cluster.dsn("postgres")).await;
    admin
        .batch_execute(&format!("CREATE ROLE {CERT_USER} LOGIN"))
        .await
        .expect("create the certificate role");
    CertCluster { cluster, tls_dir }
}

/// The password of `enc.key`; no output of dbtool may hold it.
pub const KEY_PASSWORD: &str = "Kp4wQz9Rv";

/// A client certificate for CERT_USER signed by the cluster's CA, its key at mode 0600, a copy
/// of the key at 0644 (world-readable), the key encrypted as `openssl pkcs8 -topk8 -v2
/// aes-256-cbc` writes it (`enc.key`, 0600), the same encrypted the legacy OpenSSL way
/// (`legacy.key`, Proc-Type/DEK-Info headers), and a service file giving the sslpassword.
fn make_client_certificates(dir: &Path) {
    super::tls::make_client(dir, "client", CERT_USER);
    fs::copy(dir.join("client.key"), dir.join("open.key")).expect("copy client.key");
    fs::set_permissions(dir.join("open.key"), fs::Permissions::from_mode(0o644)).expect("chmod open.key");
    super::tls::openssl(
        dir,
        &format!("pkcs8 -topk8 -v2 aes-256-cbc -in client.key -passout pass:{KEY_PASSWORD} -out enc.key"),
    );
    fs::set_permissions(dir.join("enc.key"), fs::Permissions::from_mode(0o600)).expect("chmod enc.key");
    super::tls::openssl(
        dir,
        &format!("ec -in client.key -aes256 -passout pass:{KEY_PASSWORD} -out legacy.key"),
    );
    fs::set_permissions(dir.join("legacy.key"), fs::Permissions::from_mode(0o600)).expect("chmod legacy.key");
    let service = format!("[certkey]\nsslpassword={KEY_PASSWORD}\n");
    fs::write(dir.join("pg_service.conf"), service).expect("pg_service.conf");
}
