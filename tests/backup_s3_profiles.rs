//! AWS profiles and the shared credentials and config files (`AWS_PROFILE`, `~/.aws/…`)
//! against a real S3 server with signature checking (moto's, `tests/common/s3.rs`): every
//! AWS_* variable of the test's own environment removed, so only the files under a temporary
//! HOME (or the variables a case sets) can sign a request. No secret in any output.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::backup::{assert_exit, backup_cluster, contents, dbt, seed, text};
use common::fresh_db_on;
use common::s3::S3;

const WRONG: &str = "wrongSecretFromTheFile0123456789";

/// dbtool with no AWS_* variable, HOME at `home` and its own TMPDIR.
fn bare(home: &Path) -> Command {
    let mut cmd = dbt();
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("AWS_")) {
            cmd.env_remove(key);
        }
    }
    let tmp = home.join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    cmd.env("HOME", home).env("TMPDIR", tmp).env("DBTOOL_LOG", "debug");
    cmd
}

/// Writes `~/.aws/NAME` under `home`, 0600 as `aws configure` leaves it.
fn aws_file(home: &Path, name: &str, body: &str) {
    let dir = home.join(".aws");
    std::fs::create_dir_all(&dir).expect(".aws");
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write aws file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// Runs it and checks that no secret (the server's nor the wrong one) is in its output.
fn run_quiet(s3: &S3, cmd: &mut Command) -> Output {
    s3.run_quiet(cmd, &[WRONG])
}

fn list(s3: &S3, cmd: &mut Command, url: &str) -> Output {
    run_quiet(s3, cmd.args(["backups", "list", "--json", "--dest", url]))
}

#[tokio::test]
async fn credentials_and_endpoint_from_the_files_back_up_list_and_restore() {
    let s3 = S3::start();
    let db = fresh_db_on(backup_cluster(), "s3p_roundtrip").await;
    seed(&db, 5_000).await;
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    aws_file(
        home,
        "credentials",
        &format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            s3.key_id, s3.secret
        ),
    );
    // Region and endpoint only in the config file.
    aws_file(
        home,
        "config",
        &format!("[default]\nregion = us-east-1\nendpoint_url = {}\n", s3.endpoint),
    );
    let url = s3.url("profiles/app");
    let out = run_quiet(&s3, bare(home).args(["backup", "--dsn", &db.dsn(), "--dest", &url]));
    assert_exit(&out, 0);
    let out = list(&s3, &mut bare(home), &url);
    assert_exit(&out, 0);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("list --json");
    let id = listed["backups"][0]["id"].as_str().expect("one backup").to_string();
    assert!(s3
        .keys("profiles/app/")
        .contains(&format!("profiles/app/{id}/manifest.json")));
    let into = fresh_db_on(backup_cluster(), "s3p_restored").await;
    let out = run_quiet(
        &s3,
        bare(home).args(["restore", "--dest", &url, &id, "--to", &into.dsn()]),
    );
    assert_exit(&out, 0);
    assert_eq!(contents(&into.dsn()).await, contents(&db.dsn()).await);

    // A profile that does not exist: a one-line error naming it and the files, exit 3.
    let out = list(&s3, bare(home).env("AWS_PROFILE", "nosuch"), &url);
    assert_exit(&out, 3);
    let err = text(&out.stderr);
    assert!(
        err.contains("AWS_PROFILE=nosuch") && err.contains(".aws/credentials") && err.contains("unset AWS_PROFILE"),
        "{err}"
    );
}

#[tokio::test]
async fn aws_profile_and_the_environment_choose_the_credentials() {
    let s3 = S3::start();
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    let (id, secret, ep) = (&s3.key_id, &s3.secret, &s3.endpoint);
    aws_file(
        home,
        "credentials",
        &format!(
            "[default]\naws_access_key_id = {id}\naws_secret_access_key = {WRONG}\n\n\
             [other]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n\n\
             [svc]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"
        ),
    );
    aws_file(
        home,
        "config",
        &format!(
            "[default]\nendpoint_url = {ep}\n[profile other]\nendpoint_url = {ep}\n\
             [profile svc]\nservices = local\n[services local]\ns3 =\n  endpoint_url = {ep}\n\
             [profile process]\ncredential_process = /bin/false\nendpoint_url = {ep}\n"
        ),
    );
    let url = s3.url("choose");
    // The default profile's secret is wrong: the server refuses the signature.
    let out = list(&s3, &mut bare(home), &url);
    assert_exit(&out, 3);
    assert!(
        text(&out.stderr).contains("s3://dbtool-test/choose"),
        "{}",
        text(&out.stderr)
    );
    // AWS_PROFILE picks the right one; a services section gives its endpoint.
    for profile in ["other", "svc"] {
        assert_exit(&list(&s3, bare(home).env("AWS_PROFILE", profile), &url), 0);
    }
    // Environment credentials override the file's, as a whole set.
    let env_keys = |cmd: &mut Command, secret: &str| {
        cmd.env("AWS_ACCESS_KEY_ID", id).env("AWS_SECRET_ACCESS_KEY", secret);
    };
    let mut cmd = bare(home);
    env_keys(&mut cmd, secret);
    assert_exit(&list(&s3, &mut cmd, &url), 0);
    let mut cmd = bare(home);
    env_keys(&mut cmd, WRONG);
    assert_exit(&list(&s3, cmd.env("AWS_PROFILE", "other"), &url), 3);
    // A profile that gets credentials another way is refused by name, not worked around.
    let out = list(&s3, bare(home).env("AWS_PROFILE", "process"), &url);
    assert_exit(&out, 3);
    let err = text(&out.stderr);
    assert!(
        err.contains("credential_process") && err.contains("export the credentials in the environment"),
        "{err}"
    );
    // Run by cron or systemd without HOME: the files named by their variables still work.
    let mut cmd = bare(home);
    cmd.env_remove("HOME")
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join(".aws/credentials"))
        .env("AWS_CONFIG_FILE", home.join(".aws/config"))
        .env("AWS_PROFILE", "other");
    assert_exit(&list(&s3, &mut cmd, &url), 0);
}
