//! `dbtool pool-advise`: the flags over `[pool_advise]`, one target, `pool::advise`, output.

use std::io::Write;

use anyhow::{bail, Context};

use crate::cli::pool_advise::PoolAdviseArgs;
use crate::db::ProcessEnv;
use crate::pool::advise;
use crate::pool::render::PoolFormat;
use crate::settings::{targets, Settings};

pub async fn run(args: &PoolAdviseArgs, loaded: &Settings) -> anyhow::Result<u8> {
    let opts = args.options.over(&loaded.file.pool_advise);
    // Refuse nonsense assumptions before touching any server.
    opts.assumptions()?;
    let mut found = targets::resolve(&args.conn, loaded, &ProcessEnv)?;
    if found.len() != 1 {
        bail!("pool-advise sizes one server: give one --dsn (got {})", found.len());
    }
    let target = found.remove(0);
    let session = targets::session(&args.conn, loaded, true);
    let (measured, advice) = advise::run(&opts, &target, &session).await?;
    let format = opts.format.unwrap_or(PoolFormat::Table);
    let buf = advise::render(format, &measured, &advice, &target.name)?;
    match &opts.output {
        Some(path) => crate::report::atomic::write(path, &buf)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&buf)
                .and_then(|_| out.flush())
                .context("writing to stdout")?;
        }
    }
    Ok(advice.status().code())
}

#[cfg(test)]
mod tests {
    use crate::pool::options::PoolAdviseOptions;
    use crate::settings::file::FileConfig;

    fn section(text: &str) -> PoolAdviseOptions {
        toml::from_str::<FileConfig>(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .pool_advise
    }

    #[test]
    fn flags_override_the_pool_advise_section() {
        let file = section("[pool_advise]\ndb_cores = 8\napp_instances = 3\nheadroom = 1.5\n");
        let flags = PoolAdviseOptions {
            db_cores: Some(16),
            ..PoolAdviseOptions::default()
        };
        let a = flags.over(&file).assumptions().unwrap_or_default();
        assert_eq!(
            (a.db_cores, a.app_instances, a.headroom),
            (Some(16), Some(3), Some(1.5))
        );
    }

    #[test]
    fn nonsense_multipliers_are_refused_by_name() {
        let flags = PoolAdviseOptions {
            peak_factor: Some(0.5),
            ..PoolAdviseOptions::default()
        };
        let err = flags.assumptions().map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("--peak-factor"), "{err}");
        assert!(toml::from_str::<FileConfig>("[pool_advise]\ncores = 8\n").is_err());
    }
}
