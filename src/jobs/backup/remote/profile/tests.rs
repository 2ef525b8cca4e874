use std::collections::HashMap;

use super::file::{parse, sub, Kind};
use super::*;
use crate::db::MapEnv;

/// A home with `.aws/credentials` and `.aws/config` (when given), and an environment with
/// HOME plus `vars`.
fn setup(credentials: Option<&str>, config: Option<&str>, vars: &[(&str, &str)]) -> (tempfile::TempDir, MapEnv) {
    let home = tempfile::tempdir().expect("home");
    std::fs::create_dir(home.path().join(".aws")).expect(".aws");
    for (name, text) in [("credentials", credentials), ("config", config)] {
        if let Some(t) = text {
            std::fs::write(home.path().join(".aws").join(name), t).expect("write");
        }
    }
    let mut map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    map.insert("HOME".into(), home.path().display().to_string());
    (home, MapEnv(map))
}

const CREDS: &str = "\
# a comment
[default]
aws_access_key_id = AKIDEFAULT
aws_secret_access_key = sec#ret ; a comment after whitespace

[other]
aws_access_key_id=AKIOTHER
aws_secret_access_key=otherSecret
aws_session_token = tok
";

const CONFIG: &str = "\
[default]
region = eu-west-1
[profile other]
region = us-west-2 ; comment
services = local
s3 =
  addressing_style = virtual
[services local]
s3 =
  endpoint_url = http://127.0.0.1:9000
[sso-session corp]
sso_region = us-east-1
";

fn keys(id: &str, secret: &str, token: Option<&str>) -> Option<Keys> {
    Some(Keys {
        id: id.into(),
        secret: secret.into(),
        token: token.map(String::from),
    })
}

#[test]
fn parses_sections_comments_and_sub_sections() {
    let p = parse(CONFIG, Kind::Config).expect("parse");
    assert_eq!(p.profiles["default"]["region"], "eu-west-1");
    assert_eq!(p.profiles["other"]["region"], "us-west-2");
    assert_eq!(sub(&p.profiles["other"]["s3"], "addressing_style"), Some("virtual"));
    assert_eq!(
        sub(&p.services["local"]["s3"], "endpoint_url"),
        Some("http://127.0.0.1:9000")
    );
    assert!(!p.profiles.contains_key("sso-session corp"));
    let c = parse(CREDS, Kind::Credentials).expect("parse");
    assert_eq!(c.profiles["default"]["aws_secret_access_key"], "sec#ret");
    // `[profile default]` wins over `[default]` in the config file; keys are case-insensitive.
    let p = parse("[profile default]\nRegion = a\n[default]\nregion = b\n", Kind::Config).expect("parse");
    assert_eq!(p.profiles["default"]["region"], "a");
}

#[test]
fn malformed_lines_name_the_line_and_never_its_text() {
    for (text, line) in [
        ("aws_secret_access_key = s3cr3t\n", 1),
        ("[default]\nno equals sign s3cr3t\n", 2),
        ("[default\nx = 1\n", 1),
        ("[default]\n  indented = s3cr3t\n", 2),
        ("[default]\n = s3cr3t\n", 2),
    ] {
        let (n, what) = parse(text, Kind::Credentials).expect_err(text);
        assert_eq!(n, line, "{text}");
        assert!(!what.contains("s3cr3t"));
    }
    let (_home, env) = setup(Some("[default]\naws_secret_access_key s3cr3t\n"), None, &[]);
    let e = resolve(&env).expect_err("malformed").to_string();
    assert!(e.contains("credentials:2:") && !e.contains("s3cr3t"), "{e}");
}

#[test]
fn the_default_profile_from_both_files() {
    let (_home, env) = setup(Some(CREDS), Some(CONFIG), &[]);
    let aws = resolve(&env).expect("resolve");
    assert_eq!(aws.keys, keys("AKIDEFAULT", "sec#ret", None));
    assert_eq!(aws.region.as_deref(), Some("eu-west-1"));
    assert_eq!((aws.endpoint, aws.virtual_hosted), (None, None));
    assert!(file_secrets().contains(&"sec#ret".to_string()));
    assert_eq!(format!("{:?}", aws.keys), "Some(Keys { .. })");
}

#[test]
fn aws_profile_picks_a_profile_its_services_and_addressing() {
    let (_home, env) = setup(Some(CREDS), Some(CONFIG), &[("AWS_PROFILE", "other")]);
    let aws = resolve(&env).expect("resolve");
    assert_eq!(aws.keys, keys("AKIOTHER", "otherSecret", Some("tok")));
    assert_eq!(aws.region.as_deref(), Some("us-west-2"));
    assert_eq!(aws.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(aws.virtual_hosted.as_deref(), Some("true"));
}

#[test]
fn the_environment_wins_and_its_credentials_as_a_whole() {
    let vars = [
        ("AWS_PROFILE", "other"),
        ("AWS_ACCESS_KEY_ID", "AKIENV"),
        ("AWS_SECRET_ACCESS_KEY", "envSecret"),
        ("AWS_REGION", "ap-south-1"),
        ("AWS_ENDPOINT_URL", "https://s3.example"),
        ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false"),
    ];
    let (_home, env) = setup(Some(CREDS), Some(CONFIG), &vars);
    let aws = resolve(&env).expect("resolve");
    // The profile's session token does not join the environment's keys.
    assert_eq!(aws.keys, keys("AKIENV", "envSecret", None));
    assert_eq!(aws.region.as_deref(), Some("ap-south-1"));
    assert_eq!(aws.endpoint.as_deref(), Some("https://s3.example"));
    assert_eq!(aws.virtual_hosted.as_deref(), Some("false"));
    // Nor does the environment's token join the profile's keys.
    let (_home, env) = setup(Some(CREDS), None, &[("AWS_SESSION_TOKEN", "envToken")]);
    assert_eq!(
        resolve(&env).expect("resolve").keys,
        keys("AKIDEFAULT", "sec#ret", None)
    );
    let (_home, env) = setup(None, None, &[("AWS_ACCESS_KEY_ID", "AKIENV")]);
    let e = resolve(&env).expect_err("half").to_string();
    assert!(e.contains("AWS_SECRET_ACCESS_KEY"), "{e}");
}

#[test]
fn the_credentials_file_beats_the_config_file_in_one_profile() {
    let config = "[profile p]\naws_access_key_id = AKICONF\naws_secret_access_key = confSecret\nregion = r1\n";
    let creds = "[p]\naws_access_key_id = AKICRED\naws_secret_access_key = credSecret\n";
    let (_home, env) = setup(Some(creds), Some(config), &[("AWS_PROFILE", "p")]);
    let aws = resolve(&env).expect("resolve");
    assert_eq!(aws.keys, keys("AKICRED", "credSecret", None));
    assert_eq!(aws.region.as_deref(), Some("r1"));
    // Keys only in the config file work too.
    let (_home, env) = setup(None, Some(config), &[("AWS_PROFILE", "p")]);
    assert_eq!(
        resolve(&env).expect("resolve").keys,
        keys("AKICONF", "confSecret", None)
    );
}

#[test]
fn a_missing_profile_is_an_error_only_when_named() {
    let (_home, env) = setup(Some(CREDS), Some(CONFIG), &[("AWS_PROFILE", "nope")]);
    let e = resolve(&env).expect_err("missing").to_string();
    assert!(e.contains("AWS_PROFILE=nope") && e.contains(".aws/credentials"), "{e}");
    assert!(!e.contains("sec#ret") && !e.contains("otherSecret"), "{e}");
    // No files and no AWS_PROFILE: nothing from them, object_store's own chain decides.
    let (_home, env) = setup(None, None, &[]);
    assert_eq!(resolve(&env).expect("resolve"), Aws::default());
}

#[test]
fn other_ways_to_get_credentials_are_refused_by_name() {
    for key in [
        "credential_process = /bin/true",
        "role_arn = arn:aws:iam::1:role/r",
        "sso_session = corp",
    ] {
        let config = format!("[default]\n{key}\n");
        let (_home, env) = setup(None, Some(&config), &[]);
        let e = resolve(&env).expect_err(key).to_string();
        let name = key.split(' ').next().expect("key");
        assert!(e.contains(name) && e.contains("export the credentials"), "{e}");
    }
    // With credentials in the environment the profile's credential settings are not used.
    let vars = [("AWS_ACCESS_KEY_ID", "A"), ("AWS_SECRET_ACCESS_KEY", "B")];
    let (_home, env) = setup(None, Some("[default]\ncredential_process = x\n"), &vars);
    assert!(resolve(&env).is_ok());
    let (_home, env) = setup(Some("[default]\naws_access_key_id = A\n"), None, &[]);
    let e = resolve(&env).expect_err("half").to_string();
    assert!(e.contains("without aws_secret_access_key"), "{e}");
}

#[test]
fn file_settings_follow_the_variables_and_ignore_endpoints() {
    let (home, mut env) = setup(None, None, &[]);
    let other = home.path().join("elsewhere");
    std::fs::write(&other, "[profile x]\nendpoint_url = http://e\nregion = r\n").expect("write");
    env.0.insert("AWS_CONFIG_FILE".into(), "~/elsewhere".into());
    env.0.insert("AWS_PROFILE".into(), "x".into());
    let aws = resolve(&env).expect("resolve");
    assert_eq!(
        (aws.endpoint.as_deref(), aws.region.as_deref()),
        (Some("http://e"), Some("r"))
    );
    env.0
        .insert("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS".into(), "true".into());
    assert_eq!(resolve(&env).expect("resolve").endpoint, None);
    std::fs::write(&other, "[profile x]\ns3 =\n  addressing_style = sideways\n").expect("write");
    let e = resolve(&env).expect_err("bad style").to_string();
    assert!(e.contains("addressing_style"), "{e}");
}
