//! This machine's name, as dbtool writes it in backup lock files and the job history's
//! `runner` column: one read, so both name a host the same way.

/// The kernel's hostname (`gethostname(2)`), or "unknown" if it cannot be read.
pub fn name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for its length; gethostname NUL-terminates within it on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).trim().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_kernels_hostname() {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        assert_eq!(super::name(), kernel.trim());
    }
}
