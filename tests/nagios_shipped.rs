//! The Nagios/Icinga pieces as shipped: deploy/nagios validated by icinga2 and nagios4 and its
//! command line run, a scheduled job writing nagios output, the manual's main-threshold table.

mod common;

#[path = "nagios/plugin.rs"]
mod plugin;

use std::process::{Command, Stdio};

use common::fresh_db;
use plugin::{parse, perf};

/// deploy/nagios as shipped: Icinga 2 and Nagios accept the definitions, and the Nagios command
/// line, its macros filled in as Nagios would, runs a real check with a pg_monitor role.
#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_definitions_validate_and_the_command_runs() {
    let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nagios");
    let dir = tempfile::tempdir().expect("tempdir");
    let icinga = dir.path().join("icinga2.conf");
    std::fs::write(
        &icinga,
        format!(
            "const PluginDir = \"/usr/lib/nagios/plugins\"\ninclude <itl>\ninclude <plugins>\n\
             include \"{deploy}/dbtool.icinga2.conf\"\nobject Host \"db1\" {{\n  check_command = \"hostalive\"\n  \
             address = \"192.0.2.10\"\n  vars.dbtool_checks[\"connections\"] = {{ dbtool_warning = 80, dbtool_critical = 95 }}\n  \
             vars.dbtool_checks[\"vacuum\"] = {{}}\n}}\n"
        ),
    )
    .expect("write");
    let out = Command::new("icinga2")
        .args(["daemon", "-C", "-c"])
        .arg(&icinga)
        .output()
        .expect("icinga2 (Debian icinga2-bin; scripts/test --deps-only installs it)");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}{}", String::from_utf8_lossy(&out.stderr));
    assert!(log.contains("Instantiated 2 Services."), "{log}");

    // nagios4 -v drops to the nagios user, which must be able to write the check results dir.
    let results = dir.path().join("results");
    std::fs::create_dir(&results).expect("mkdir");
    use std::os::unix::fs::PermissionsExt;
    for p in [dir.path(), results.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let main = dir.path().join("nagios.cfg");
    let objects = "/etc/nagios4/objects";
    std::fs::write(
        &main,
        format!(
            "cfg_file={objects}/commands.cfg\ncfg_file={objects}/contacts.cfg\ncfg_file={objects}/timeperiods.cfg\n\
             cfg_file={objects}/templates.cfg\ncfg_dir=/etc/nagios-plugins/config\ncfg_file={deploy}/dbtool.nagios.cfg\n\
             check_result_path={}\nillegal_macro_output_chars=`~$&|'\"<>\n",
            results.display()
        ),
    )
    .expect("write");
    let out = Command::new("nagios4")
        .arg("-v")
        .arg(&main)
        .output()
        .expect("nagios4 (Debian nagios4-core; scripts/test --deps-only installs it)");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && log.contains("Total Errors:   0"), "{log}");

    // The command line as Nagios runs it (through sh), with its macros filled in.
    let cfg = std::fs::read_to_string(format!("{deploy}/dbtool.nagios.cfg")).expect("read");
    let line = cfg
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("command_line").filter(|l| l.contains("$ARG2$")))
        .expect("check_dbtool's command_line")
        .trim();
    let db = fresh_db("nagios_shipped").await;
    let admin = db.client().await;
    admin
        .batch_execute(
            "DO $$ BEGIN CREATE ROLE nagios LOGIN IN ROLE pg_monitor; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
        )
        .await
        .expect("role nagios");
    let dsn = db.dsn();
    let word = |key: &str| {
        dsn.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {dsn}"))
            .to_string()
    };
    let address = format!("{} port={}", word("host"), word("port"));
    let line = line
        .replace("/usr/local/bin/dbtool", env!("CARGO_BIN_EXE_dbtool"))
        .replace("$HOSTADDRESS$", &address)
        .replace("$ARG1$", "connections")
        .replace("$ARG2$", "1")
        .replace("$ARG3$", "99");
    // Through sh, as Nagios runs a command line with quotes, without the caller's libpq settings.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &line]);
    for (k, _) in std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("PG")) {
        cmd.env_remove(k);
    }
    let (code, out, err) = common::run_command(cmd).await;
    assert_eq!(code, 1, "connections over 1% is a WARNING: {line}\n{out}{err}");
    let parsed = parse(&out);
    let usage = perf(&parsed, "connections_usage_ratio");
    assert_eq!(
        (usage["warn"].as_str(), usage["crit"].as_str()),
        (Some("1"), Some("99"))
    );
}

/// A scheduled health job with `format = "nagios"` writes what the command prints, bounded by
/// its `max_output`, for a passive check to pick up.
#[test]
fn a_scheduled_job_writes_nagios_output() {
    // Never migrated: a health job claims nothing and needs no schema.
    let db = common::fresh_db_blocking("nagios_job");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("d.toml");
    let file = dir.path().join("postgres.nagios");
    let dsn = db.dsn().replace('\\', "\\\\").replace('"', "\\\"");
    std::fs::write(
        &config,
        format!(
            "[[targets]]\nname = \"main\"\ndsn = \"{dsn}\"\n\n[[jobs]]\nname = \"h\"\nkind = \"health\"\n\
             schedule = \"* * * * * *\"\ncatch_up = false\nchecks = [\"connections\", \"locks\"]\n\
             format = \"nagios\"\nmax_output = 600\noutput = \"{}\"\n",
            file.display()
        ),
    )
    .expect("config");
    let mut child = common::dbtool()
        .arg("--config")
        .arg(&config)
        .arg("schedule")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dbtool schedule");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let text = loop {
        match std::fs::read_to_string(&file) {
            Ok(text) if !text.is_empty() => break text,
            _ if std::time::Instant::now() > until => {
                let _ = child.kill();
                panic!("the job wrote no {}", file.display());
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.len() <= 600, "{} bytes: {text}", text.len());
    let parsed = parse(&text);
    assert_eq!(parsed["state"], "OK", "{text}");
    assert!(
        text.starts_with("POSTGRES OK - 2 checks OK | connections_usage_ratio="),
        "{text}"
    );
}

/// The manual's table of main thresholds is the registry's: a check gaining or losing one, or a
/// key renamed, fails here until docs/src/nagios.md says so.
#[test]
fn the_manual_lists_each_main_threshold_as_the_registry_declares_it() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/src/nagios.md")).expect("page");
    let rows: Vec<&str> = page.lines().filter(|l| l.starts_with("| `")).collect();
    let mut expected = Vec::new();
    for check in dbtool::checks::REGISTRY {
        if let Some(main) = check.main_threshold() {
            let family = main.family.name.strip_prefix("dbtool_").unwrap_or(main.family.name);
            expected.push(format!(
                "| `{}` | `{}` / `{}`",
                check.name(),
                main.warning,
                main.critical
            ));
            let row = rows
                .iter()
                .find(|r| r.starts_with(&format!("| `{}` |", check.name())))
                .unwrap_or_else(|| panic!("docs/src/nagios.md has no row for {}", check.name()));
            assert!(row.starts_with(expected.last().unwrap().as_str()), "{row}");
            assert!(row.contains(&format!("`{family}")), "{row} names {family}");
        }
    }
    assert_eq!(
        rows.len(),
        expected.len(),
        "rows for checks without a main threshold: {rows:?}"
    );
}
