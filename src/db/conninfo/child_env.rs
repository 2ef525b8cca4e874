//! The libpq environment of a child (pg_dump, pg_restore, psql): the connection dbtool
//! resolved, so the child reaches the same server the same way.

use super::{ConnParams, SslNegotiation, TargetSessionAttrs, DEFAULT_CONNECT_TIMEOUT};

impl ConnParams {
    /// libpq-style env for child processes (pg_dump etc.), so they reach the same server the same
    /// way; no password (`db::child_service` hands it over).
    pub fn libpq_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("PGHOST", self.hosts.join(",")),
            ("PGPORT", self.port_list()),
            ("PGUSER", self.user.clone()),
            ("PGDATABASE", self.dbname.clone()),
            ("PGSSLMODE", self.sslmode.to_string()),
            ("PGAPPNAME", self.application_name.clone()),
        ];
        if self.hostaddrs.iter().any(Option::is_some) {
            env.push(("PGHOSTADDR", self.hostaddr_list()));
        }
        if let Some(cert) = &self.sslrootcert {
            env.push(("PGSSLROOTCERT", cert.display().to_string()));
        }
        if let Some(cert) = &self.sslcert {
            env.push(("PGSSLCERT", cert.display().to_string()));
        }
        if let Some(key) = &self.sslkey {
            env.push(("PGSSLKEY", key.display().to_string()));
        }
        let files = [("PGSSLCRL", &self.sslcrl), ("PGSSLCRLDIR", &self.sslcrldir)];
        env.extend(
            files
                .iter()
                .filter_map(|(var, p)| Some((*var, p.as_ref()?.display().to_string()))),
        );
        env.push(("PGCHANNELBINDING", self.channel_binding.as_str().to_string()));
        if self.ssl_negotiation != SslNegotiation::Postgres {
            env.push(("PGSSLNEGOTIATION", self.ssl_negotiation.as_str().to_string()));
        }
        // why: a password we hold goes by db::child_service, never the environment; a pgpass
        // file's by its path, so the child picks the right line per host itself, as we did.
        if let (None, Some(file)) = (&self.password, &self.passfile) {
            env.push(("PGPASSFILE", file.display().to_string()));
        }
        // The effective limit, so a child never waits longer than dbtool itself would.
        let timeout = self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        env.push(("PGCONNECT_TIMEOUT", timeout.as_secs().to_string()));
        if let Some(o) = &self.options {
            env.push(("PGOPTIONS", o.clone()));
        }
        if self.target_session_attrs != TargetSessionAttrs::Any {
            env.push(("PGTARGETSESSIONATTRS", self.target_session_attrs.as_str().to_string()));
        }
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}
