//! What can go wrong starting or driving a throwaway cluster; each message names the fix.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

use crate::{MAX_SOCKET_PATH, OWNER_WHEN_ROOT};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no PostgreSQL server binaries found: install postgresql (apt-get install postgresql) or set DBTOOL_PG_BIN"
    )]
    NoServerBinaries,
    #[error("DBTOOL_PG_BIN={} has no initdb: point it at a PostgreSQL bin directory such as /usr/lib/postgresql/15/bin", .0.display())]
    BadPgBinVar(PathBuf),
    #[error("running as root, but there is no `{OWNER_WHEN_ROOT}` user to own the cluster (PostgreSQL refuses to run as root): install postgresql, which creates it, or run as a non-root user")]
    NoOwnerUser,
    #[error("the {OWNER_WHEN_ROOT} user cannot traverse {}: set TMPDIR to a directory every user can reach, such as /tmp", .0.display())]
    TempDirUnreachable(PathBuf),
    #[error("unix socket path {} is longer than the {MAX_SOCKET_PATH} bytes the kernel allows: set TMPDIR to a shorter directory such as /tmp", .0.display())]
    SocketPathTooLong(PathBuf),
    #[error("could not {action} {}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("could not run {}; is it an executable PostgreSQL binary?", .program.display())]
    Spawn { program: PathBuf, source: io::Error },
    #[error("{} failed ({status}): {output}", .program.display())]
    Failed {
        program: PathBuf,
        status: ExitStatus,
        output: String,
    },
    #[error("`{} --version` printed {output:?}, which has no PostgreSQL version: point the bin dir at a PostgreSQL server", .program.display())]
    Version { program: PathBuf, output: String },
    #[error("could not reserve a free TCP port on 127.0.0.1")]
    NoFreePort(#[source] io::Error),
    #[error("PostgreSQL in {} did not start on port {port}: {pg_ctl}\nlast lines of {}:\n{log_tail}", .data_dir.display(), .log.display())]
    Start {
        data_dir: PathBuf,
        port: u16,
        pg_ctl: String,
        log: PathBuf,
        log_tail: String,
    },
}
