//! A streaming standby of a throwaway cluster, for replication tests.
//!
//! The base backup is a cold copy: stop the primary, copy its data directory, start it
//! again. pg_basebackup only exists for Debian's 15 (and refuses newer servers), and the
//! npm builds ship only initdb/pg_ctl/postgres; the low-level hot method
//! (pg_backup_start/stop) needs an SQL session held open across the copy, which this
//! synchronous harness does not have. A cleanly stopped primary needs neither backup_label
//! nor WAL archiving, and works the same on every major from 13 to 18. The primary's few
//! seconds of downtime do not matter for a throwaway cluster.

use std::fs;
use std::path::Path;

use crate::owner::make_base_dir;
use crate::{checked, free_port, io_err, ClusterError, TempCluster, PORT_ATTEMPTS, SUPERUSER};

impl TempCluster {
    /// Copies `primary` and starts the copy as its streaming standby (own port and socket
    /// dir, `application_name=dbtool_standby`). The primary is restarted on its port.
    pub fn start_standby_of(primary: &TempCluster) -> Result<TempCluster, ClusterError> {
        let base = make_base_dir(primary.owner)?;
        let mut standby = TempCluster {
            data: base.join("data"),
            sock: base.join("sock"),
            log: base.join("server.log"),
            base,
            bin: primary.bin.clone(),
            port: 0,
            version_num: primary.version_num,
            owner: primary.owner,
            reaper: None,
        };
        standby.reaper = standby.spawn_reaper();
        primary.stop()?;
        let (from, to) = (primary.data.to_string_lossy(), standby.data.to_string_lossy());
        // As the owner, so the copy keeps owner and modes (0700) the server insists on.
        let copied = standby.run_as_owner(Path::new("/bin/cp"), &["-a", &from, &to]);
        primary.start_again()?;
        checked(copied?, Path::new("/bin/cp"))?;
        // A server stopped cleanly leaves no postmaster.pid; a crashed one would.
        let _ = fs::remove_file(standby.data.join("postmaster.pid"));
        let signal = standby.data.join("standby.signal");
        let touched = standby.run_as_owner(Path::new("/usr/bin/touch"), &[&signal.to_string_lossy()]);
        checked(touched?, Path::new("/usr/bin/touch"))?;

        let conf_path = standby.data.join("postgresql.conf");
        let copied_conf = fs::read_to_string(&conf_path).map_err(io_err("read", &conf_path))?;
        let conninfo = format!(
            "host={} port={} user={SUPERUSER} application_name=dbtool_standby",
            primary.sock.to_string_lossy(),
            primary.port
        );
        let extra = [
            format!("primary_conninfo = '{}'", conninfo.replace('\'', "''")),
            "hot_standby = on".to_string(),
        ];
        for attempt in 1..=PORT_ATTEMPTS {
            standby.port = free_port()?;
            // Appended last: the standby's port, socket dir and primary_conninfo win.
            let conf = format!("{copied_conf}\n{}", standby.conf_block(&extra));
            fs::write(&conf_path, conf).map_err(io_err("write", &conf_path))?;
            match standby.start_again() {
                Ok(()) => break,
                Err(ClusterError::Start { log_tail, .. })
                    if attempt < PORT_ATTEMPTS && log_tail.contains("already in use") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(standby)
    }
}
