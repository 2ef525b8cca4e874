//! Item 5's property: whatever a DSN with a password looks like, no error text and no label
//! or redacted form contains any piece of that password. A seeded generator, so a failure
//! reproduces; the seed and the DSN are in the assertion message.

use super::*;

const MARKER: &str = "Qx7Kp9Zw";
/// Characters that end or split a value somewhere in a URL or a key=value string.
const SPECIALS: &[char] = &['/', '@', ':', '?', '%', ' ', '\'', '\\', ',', '=', '&', '#', '[', ']'];

/// xorshift64*: small, deterministic, good enough to pick fragments.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33;
        usize::try_from(r).unwrap_or(0) % n
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// The marker with up to three special characters put in at random places.
fn password(rng: &mut Rng) -> String {
    let mut pw: Vec<char> = MARKER.chars().collect();
    for _ in 0..rng.below(4) {
        let at = rng.below(pw.len() + 1);
        pw.insert(at, SPECIALS[rng.below(SPECIALS.len())]);
    }
    pw.into_iter().collect()
}

fn dsn(rng: &mut Rng) -> String {
    let pw = password(rng);
    match rng.below(3) {
        0 => {
            let schemes = [
                "postgres://",
                "postgresql://",
                "postgresql:/",
                "postgresql:",
                "jdbc:postgresql://",
                "POSTGRES://",
                "mysql://",
                "",
            ];
            let hosts = ["h", "h:5432", "[::1]:5433", "h1,h2:6000", "", "h:57", "h:x"];
            let tails = [
                "",
                "/db",
                "/db?sslmode=require",
                "?application_name=x",
                "/d%zz",
                "/db?foo=1",
            ];
            let (scheme, user) = (rng.pick(&schemes), rng.pick(&["u", "", "a%40b"]));
            format!("{scheme}{user}:{pw}@{}{}", rng.pick(&hosts), rng.pick(&tails))
        }
        1 => {
            let tail = rng.pick(&["", "&port=5432", "&port=x", "&sslmode=bogus", "&foo=1"]);
            format!("postgres://h/db?password={pw}{tail}")
        }
        _ => {
            let value = match rng.below(3) {
                0 => pw,
                1 => format!("'{pw}'"),
                _ => format!("'{}'", pw.replace('\\', "\\\\").replace('\'', "\\'")),
            };
            let mut parts = vec![format!("password={value}")];
            for p in [
                "host=h",
                "port=5432",
                "dbname=db",
                "user=u",
                "port=x",
                "sslmode=no",
                "foo=1",
            ] {
                if rng.below(3) == 0 {
                    parts.insert(rng.below(parts.len() + 1), p.to_string());
                }
            }
            parts.join(rng.pick(&[" ", "  ", "\t"]))
        }
    }
}

/// Some four-character piece of the marker in `text`, if any.
fn leaked(text: &str) -> Option<&'static str> {
    (0..=MARKER.len() - 4)
        .map(|i| &MARKER[i..i + 4])
        .find(|w| text.contains(w))
}

#[test]
fn no_error_label_or_redacted_form_holds_a_piece_of_the_password() {
    let env = MapEnv(std::collections::HashMap::from([("PGUSER".into(), "u".into())]));
    for seed in 1..=4000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let dsn = dsn(&mut rng);
        let shown = match ConnParams::resolve(Some(&dsn), &env) {
            Err(e) => vec![e.to_string(), format!("{e:?}")],
            Ok(p) => vec![p.target_label(), p.redacted(), format!("{p:?}")],
        };
        for text in shown {
            assert!(leaked(&text).is_none(), "seed {seed}: {dsn:?} -> {text}");
        }
    }
}

#[test]
fn sslpassword_is_read_from_the_dsn_and_never_shown() {
    let env = MapEnv(std::collections::HashMap::from([("PGUSER".into(), "u".into())]));
    for dsn in [
        format!("host=h sslpassword='{MARKER} x'"),
        format!("postgres://h/db?sslpassword={MARKER}"),
    ] {
        let p = ConnParams::resolve(Some(&dsn), &env).expect("resolves");
        assert!(p.sslpassword().is_some_and(|pw| pw.starts_with(MARKER)), "{dsn}");
        let env_text = format!("{:?}", p.libpq_env());
        for text in [p.target_label(), p.redacted(), format!("{p:?}"), env_text] {
            assert!(leaked(&text).is_none(), "{dsn:?} -> {text}");
        }
        let bad = format!("{dsn} port=x");
        if let Err(e) = ConnParams::resolve(Some(&bad), &env) {
            assert!(leaked(&e.to_string()).is_none(), "{e}");
        }
    }
    // From a service file too; libpq has no environment variable for it.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pg_service.conf");
    std::fs::write(&file, format!("[app]\nhost=h\nsslpassword={MARKER}\n")).expect("write");
    let env = MapEnv(std::collections::HashMap::from([
        ("PGSSLPASSWORD".into(), "from-env".into()),
        ("PGSERVICEFILE".into(), file.display().to_string()),
        ("HOME".into(), dir.path().display().to_string()),
    ]));
    let p = ConnParams::resolve(Some("service=app user=u"), &env).expect("resolves");
    assert_eq!(p.sslpassword(), Some(MARKER));
    let p = ConnParams::resolve(Some("host=h user=u"), &env).expect("resolves");
    assert!(p.sslpassword().is_none());
}
