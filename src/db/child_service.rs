//! The passwords dbtool holds, handed to a libpq child (pg_dump, pg_restore, psql): the login
//! `password` (from the DSN, a URL, PGPASSWORD or a service file, not a pgpass file) and an
//! encrypted client key's `sslpassword`. They travel in a one-section service file held in an
//! anonymous memory file (memfd): never on disk, in argv or in the environment, where
//! /proc/PID/environ shows them to the same user and root, core dumps keep them and every
//! grandchild inherits them. The child gets `PGSERVICEFILE=/proc/self/fd/N` and
//! `PGSERVICE=dbtool-child`; libpq opens that path for every connection it makes (pg_dump
//! --jobs opens several), and each open of a memfd's /proc path starts at offset 0.
//!
//! libpq's precedence is the connection string, then the service file, then the environment
//! (fe-connect.c: `conninfo_add_defaults` reads the service before the PG* variables). The
//! child's connection string names only a database and its environment has no PGPASSWORD, so
//! the section's password is the one it uses; the section holds nothing else, so it overrides
//! nothing the child gets otherwise. A password from a pgpass file is not ours to copy: the
//! child gets PGPASSFILE (a path) and picks the line per host itself.

use std::ffi::CStr;
use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::ConnParams;

/// The service the child's PGSERVICE names.
pub const SECTION: &str = "dbtool-child";

/// libpq reads a service-file line into a fixed buffer and refuses a longer line (256 bytes in
/// older releases, 1024 in later ones): the smaller one holds "sslpassword=" (the longer key),
/// 240 bytes and the newline.
pub const MAX_LEN: usize = 240;

/// Why a value cannot be a service-file line: libpq takes the rest of the line after the first
/// `=`, drops trailing whitespace and knows no quoting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfit {
    /// A line break or NUL ends the value early.
    LineBreak,
    /// libpq drops it.
    TrailingWhitespace,
    /// Over [`MAX_LEN`] bytes.
    TooLong,
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unfit::LineBreak => "it holds a line break or NUL",
            Unfit::TrailingWhitespace => "it ends in whitespace, which libpq's service file drops",
            Unfit::TooLong => "it is longer than the 240 bytes older libpq releases read from a service-file line",
        })
    }
}

/// Whether `value` survives a service-file line as it is.
pub fn fit(value: &str) -> Result<(), Unfit> {
    if value.contains(['\n', '\r', '\0']) {
        return Err(Unfit::LineBreak);
    }
    if value.ends_with(|c: char| c.is_ascii_whitespace() || c == '\x0b') {
        return Err(Unfit::TrailingWhitespace);
    }
    if value.len() > MAX_LEN {
        return Err(Unfit::TooLong);
    }
    Ok(())
}

/// Why an sslpassword cannot reach a child, or the memory file could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChildServiceError {
    #[error("sslpassword cannot be passed to pg_dump/pg_restore/psql: libpq's service file takes a value to the end of its line and drops trailing whitespace, so a password holding a line break or NUL, or ending in whitespace, cannot be carried; re-encrypt the key (openssl pkcs8 -topk8) with a password without them")]
    Unrepresentable,
    #[error("sslpassword is longer than {MAX_LEN} bytes, which the service-file line of older libpq releases cannot carry to pg_dump/pg_restore/psql; re-encrypt the key (openssl pkcs8 -topk8) with a shorter password")]
    TooLong,
    #[error("could not make the in-memory service file that passes the password to the child: {0}")]
    Memfd(#[source] io::Error),
}

/// Set once the fallback to PGPASSWORD has been warned about: one line per process (a command's
/// run, or a `schedule` daemon's life), not one per child.
static WARNED: AtomicBool = AtomicBool::new(false);

/// Hands `cmd` the passwords `params` holds: in the memfd service section where they fit.
///
/// A login password the section cannot carry ([`Unfit`]) goes in PGPASSWORD instead, with one
/// warning per process naming why (never the password). Refusing would break a backup that worked
/// before, and libpq itself accepts such a password from PGPASSWORD; the warning says how to
/// keep it out of the environment. An sslpassword has no such fallback (libpq has no
/// environment variable for it): it is refused, as before.
pub fn hand_over(cmd: &mut tokio::process::Command, params: &ConnParams) -> Result<(), ChildServiceError> {
    let mut entries = Vec::new();
    if let Some(password) = params.given_password() {
        match fit(password) {
            Ok(()) => entries.push(("password", password)),
            Err(why) => {
                if !WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "the password cannot reach pg_dump/pg_restore/psql in dbtool's in-memory service file ({why}), so it goes in their PGPASSWORD, which /proc/PID/environ shows to the same user and root; to keep it out, choose a password of at most {MAX_LEN} bytes without line breaks or trailing whitespace, or keep it in a pgpass file"
                    );
                }
                cmd.env("PGPASSWORD", password);
            }
        }
    }
    if let Some(sslpassword) = params.sslpassword() {
        fit(sslpassword).map_err(|why| match why {
            Unfit::TooLong => ChildServiceError::TooLong,
            Unfit::LineBreak | Unfit::TrailingWhitespace => ChildServiceError::Unrepresentable,
        })?;
        entries.push(("sslpassword", sslpassword));
    }
    if entries.is_empty() {
        return Ok(());
    }
    attach(cmd, &service_text(&entries))
}

/// The service file's text: `[dbtool-child]` and a `key=value` line per entry, each value as
/// libpq reads it (the rest of the line after the first `=`, no quoting). The values must
/// [`fit`].
pub fn service_text(entries: &[(&str, &str)]) -> String {
    let mut text = format!("[{SECTION}]\n");
    for (key, value) in entries {
        text.push_str(&format!("{key}={value}\n"));
    }
    text
}

/// Points `cmd` at an in-memory service file holding `text`. The memfd is close-on-exec in
/// dbtool, so no other child inherits it; only this command's child clears the flag (in
/// `pre_exec`, between fork and exec). The descriptor lives as long as `cmd` does.
fn attach(cmd: &mut tokio::process::Command, text: &str) -> Result<(), ChildServiceError> {
    let fd = Arc::new(memfd_with(text.as_bytes()).map_err(ChildServiceError::Memfd)?);
    let raw = fd.as_raw_fd();
    cmd.env("PGSERVICEFILE", format!("/proc/self/fd/{raw}"))
        .env("PGSERVICE", SECTION);
    let keep = Arc::clone(&fd);
    // SAFETY: the closure runs in the forked child before exec and calls only fcntl, which is
    // async-signal-safe; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            let raw = keep.as_raw_fd();
            if libc::fcntl(raw, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// An anonymous, close-on-exec memory file holding `bytes`, sealed against further change.
fn memfd_with(bytes: &[u8]) -> io::Result<OwnedFd> {
    const NAME: &CStr = c"dbtool-child-service";
    // SAFETY: NAME is a valid NUL-terminated string; the flags are documented memfd_create flags.
    let raw = unsafe { libc::memfd_create(NAME.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if raw == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a descriptor we own; a failure leaves the file usable, only unsealed.
    let _ = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) };
    Ok(OwnedFd::from(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_is_the_rest_of_the_line() {
        let value = " a#b=c'd\"e\\f";
        assert_eq!(fit(value), Ok(()));
        let text = service_text(&[("password", "pw"), ("sslpassword", value)]);
        assert_eq!(text, "[dbtool-child]\npassword=pw\nsslpassword= a#b=c'd\"e\\f\n");
    }

    #[test]
    fn what_a_service_file_cannot_carry_is_named() {
        for bad in ["a\nb", "a\rb", "a\0b"] {
            assert_eq!(fit(bad), Err(Unfit::LineBreak), "{bad:?}");
        }
        for bad in ["trailing ", "tab\t", "vt\x0b"] {
            assert_eq!(fit(bad), Err(Unfit::TrailingWhitespace), "{bad:?}");
        }
        assert_eq!(fit(&"x".repeat(MAX_LEN + 1)), Err(Unfit::TooLong));
        assert_eq!(fit(&"x".repeat(MAX_LEN)), Ok(()));
    }

    #[test]
    fn the_memfd_path_rereads_from_the_start_every_open() {
        let fd = memfd_with(b"[dbtool-child]\nsslpassword=x\n").expect("memfd");
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        for _ in 0..3 {
            let text = std::fs::read_to_string(&path).expect("reopen the memfd");
            assert_eq!(text, "[dbtool-child]\nsslpassword=x\n");
        }
    }

    #[test]
    fn an_sslpassword_that_does_not_fit_is_refused_without_showing_it() {
        let env = crate::db::MapEnv(std::collections::HashMap::from([("PGUSER".into(), "u".into())]));
        for (dsn, long) in [("host=h sslpassword='S3cret-marker '", false), ("host=h", true)] {
            let dsn = if long {
                format!("{dsn} sslpassword=S3cret-marker{}", "x".repeat(MAX_LEN))
            } else {
                dsn.into()
            };
            let params = ConnParams::resolve(Some(&dsn), &env).expect("resolves");
            let mut cmd = tokio::process::Command::new("/bin/true");
            let err = hand_over(&mut cmd, &params).expect_err("refused");
            assert!(matches!(
                (long, &err),
                (false, ChildServiceError::Unrepresentable) | (true, ChildServiceError::TooLong)
            ));
            assert!(!err.to_string().contains("S3cret-marker"), "{err}");
        }
    }
}
