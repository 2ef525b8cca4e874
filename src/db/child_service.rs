//! The encrypted client key's `sslpassword` for a libpq child (pg_dump, pg_restore, psql).
//! libpq has no environment variable for it, so it travels in a one-section service file held
//! in an anonymous memory file (memfd): never on disk, in argv or in the environment, where
//! `ps` and /proc/PID/environ would show it. The child gets `PGSERVICEFILE=/proc/self/fd/N`
//! and `PGSERVICE=dbtool-child`; libpq opens that path for every connection it makes (pg_dump
//! --jobs opens several), and each open of a memfd's /proc path starts at offset 0.
//!
//! libpq's precedence is the connection string, then the service file, then the environment
//! (fe-connect.c: `conninfo_add_defaults` reads the service before the PG* variables), so the
//! section holds `sslpassword` alone: it cannot override what the child gets otherwise.

use std::ffi::CStr;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

/// The service the child's PGSERVICE names.
pub const SECTION: &str = "dbtool-child";

/// libpq reads a service-file line into a fixed buffer and refuses a longer line (256 bytes in
/// older releases, 1024 in later ones): the smaller one holds "sslpassword=", 240 bytes and the
/// newline.
pub const MAX_LEN: usize = 240;

/// Why an sslpassword cannot reach a child, or the memory file could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChildServiceError {
    #[error("sslpassword cannot be passed to pg_dump/pg_restore/psql: libpq's service file takes a value to the end of its line and drops trailing whitespace, so a password holding a line break or NUL, or ending in whitespace, cannot be carried; re-encrypt the key (openssl pkcs8 -topk8) with a password without them")]
    Unrepresentable,
    #[error("sslpassword is longer than {MAX_LEN} bytes, which the service-file line of older libpq releases cannot carry to pg_dump/pg_restore/psql; re-encrypt the key (openssl pkcs8 -topk8) with a shorter password")]
    TooLong,
    #[error("could not make the in-memory service file that passes sslpassword to the child: {0}")]
    Memfd(#[source] io::Error),
}

/// The service file's text: `[dbtool-child]` and `sslpassword=…`, the value as libpq reads it
/// (the rest of the line after the first `=`, trailing whitespace dropped, no quoting).
pub fn service_text(sslpassword: &str) -> Result<String, ChildServiceError> {
    let unrepresentable = sslpassword.contains(['\n', '\r', '\0'])
        || sslpassword.ends_with(|c: char| c.is_ascii_whitespace() || c == '\x0b');
    if unrepresentable {
        return Err(ChildServiceError::Unrepresentable);
    }
    if sslpassword.len() > MAX_LEN {
        return Err(ChildServiceError::TooLong);
    }
    Ok(format!("[{SECTION}]\nsslpassword={sslpassword}\n"))
}

/// Points `cmd` at an in-memory service file holding `sslpassword`. The memfd is close-on-exec
/// in dbtool, so no other child inherits it; only this command's child clears the flag (in
/// `pre_exec`, between fork and exec). The descriptor lives as long as `cmd` does.
pub fn attach(cmd: &mut tokio::process::Command, sslpassword: &str) -> Result<(), ChildServiceError> {
    let text = service_text(sslpassword)?;
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
        let text = service_text(" a#b=c'd\"e\\f").expect("representable");
        assert_eq!(text, "[dbtool-child]\nsslpassword= a#b=c'd\"e\\f\n");
    }

    #[test]
    fn what_a_service_file_cannot_carry_is_refused() {
        for bad in ["a\nb", "a\rb", "a\0b", "trailing ", "tab\t"] {
            assert!(
                matches!(service_text(bad), Err(ChildServiceError::Unrepresentable)),
                "{bad:?}"
            );
        }
        assert!(matches!(
            service_text(&"x".repeat(MAX_LEN + 1)),
            Err(ChildServiceError::TooLong)
        ));
        assert!(service_text(&"x".repeat(MAX_LEN)).is_ok());
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
    fn errors_never_hold_the_password() {
        let pw = "S3cret-marker \n";
        let err = service_text(pw).expect_err("refused");
        assert!(!err.to_string().contains("S3cret-marker"), "{err}");
    }
}
