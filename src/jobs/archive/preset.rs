//! `--preset`: the options an application's schema needs, filled in as if written by hand
//! (`flags` prints them), so nothing a preset does is out of the user's reach.
//!
//! Mattermost (PostgreSQL; names as its migrations create them, unquoted, so lower case:
//! server/channels/db/migrations/postgres/ in mattermost/mattermost): `posts(id varchar(26),
//! createat bigint epoch ms, ispinned, rootid…)`, and the tables that refer to a post by id
//! without foreign keys. Each of their columns leads an index there (a primary key or
//! `idx_fileinfo_postid_at`, `idx_preferences_name`).

use serde::Deserialize;

use super::{predicate, ArchiveError, ArchiveJob, ColumnType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Mattermost posts with reactions, files, threads, flags, priorities, acknowledgements
    Mattermost,
}

/// Children of a Mattermost post. A thread's row (`threads.postid`) and its memberships are
/// keyed by the root post's id, so they go with the root; a reply is archived by its own
/// createat, like Mattermost's own data retention does. `preferences` rows named after a
/// post id are its "flagged" marks (category `flagged_post`); Mattermost ids are random and
/// unique across tables, so no other preference is named after a post.
pub const MATTERMOST_CHILDREN: [&str; 8] = [
    "reactions:postid",
    "fileinfo:postid",
    "threads:postid",
    "threadmemberships:postid",
    "preferences:name",
    "postspriority:postid",
    "postacknowledgements:postid",
    "persistentnotifications:postid",
];

/// The FileInfo columns that name files in the file store.
pub const MATTERMOST_FILES: &str = "fileinfo:path,thumbnailpath,previewpath";

/// Pinned posts stay unless `--include-pinned`.
const KEEP_PINNED: &str = "s.ispinned IS NOT TRUE";

/// The job with the preset's options filled in where the user gave none; the result has no
/// preset left (expanding twice changes nothing).
pub fn expand(job: &ArchiveJob) -> Result<ArchiveJob, ArchiveError> {
    let mut j = job.clone();
    let Some(Preset::Mattermost) = j.preset.take() else {
        return Ok(j);
    };
    if j.table.trim().is_empty() {
        j.table = "public.posts".into();
    }
    if j.column.trim().is_empty() {
        j.column = "createat".into();
    }
    j.column_type.get_or_insert(ColumnType::EpochMs);
    if j.children.is_empty() {
        j.children = MATTERMOST_CHILDREN.iter().map(|c| c.to_string()).collect();
    }
    if j.files_manifest.is_some() && j.files_from.is_none() {
        j.files_from = Some(MATTERMOST_FILES.into());
    }
    if !std::mem::take(&mut j.include_pinned) {
        j.filter = Some(match j.filter.take() {
            // Checked alone first: ANDed, a condition that is not one could undo the other.
            Some(w) => {
                predicate::check(&w, predicate::Strings::Standard)
                    .map_err(|e| ArchiveError::Config(format!("--where: {e}")))?;
                format!("({w}) AND {KEEP_PINNED}")
            }
            None => KEEP_PINNED.into(),
        });
    }
    Ok(j)
}

/// The command line that runs `job` by hand (connection flags aside), for `--dry-run`.
pub fn flags(job: &ArchiveJob) -> String {
    let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut out = vec![
        format!("--table {}", q(&job.table)),
        format!("--column {}", q(&job.column)),
    ];
    if let Some(t) = job.column_type {
        let v = clap::ValueEnum::to_possible_value(&t).map_or_else(String::new, |v| v.get_name().to_string());
        out.push(format!("--column-type {v}"));
    }
    out.push(format!("--older-than {}", q(&job.older_than)));
    out.extend(job.children.iter().map(|c| format!("--child {}", q(c))));
    if let Some(w) = &job.filter {
        out.push(format!("--where {}", q(w)));
    }
    if let Some(f) = &job.files_from {
        out.push(format!("--files-from {}", q(f)));
    }
    if let Some(f) = &job.files_manifest {
        out.push(format!("--files-manifest {}", q(&f.display().to_string())));
    }
    format!("dbtool archive {}", out.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mattermost_fills_in_what_was_not_given_and_keeps_pinned_posts() {
        let job = ArchiveJob {
            preset: Some(Preset::Mattermost),
            older_than: "1y".into(),
            filter: Some("s.channelid <> 'x'".into()),
            files_manifest: Some("/tmp/files.txt".into()),
            ..ArchiveJob::default()
        };
        let j = expand(&job).expect("expands");
        assert_eq!((j.table.as_str(), j.column.as_str()), ("public.posts", "createat"));
        assert_eq!(j.column_type, Some(ColumnType::EpochMs));
        assert_eq!(j.children.len(), MATTERMOST_CHILDREN.len());
        assert_eq!(
            j.filter.as_deref(),
            Some("(s.channelid <> 'x') AND s.ispinned IS NOT TRUE")
        );
        assert_eq!(j.files_from.as_deref(), Some(MATTERMOST_FILES));
        assert_eq!(expand(&j).expect("again"), j, "expanding twice changes nothing");
        let shown = flags(&j);
        assert!(shown.contains("--child 'fileinfo:postid'"), "{shown}");
        assert!(
            shown.contains("--where '(s.channelid <> '\\''x'\\'') AND s.ispinned IS NOT TRUE'"),
            "{shown}"
        );
        let all = expand(&ArchiveJob {
            include_pinned: true,
            ..job
        })
        .expect("expands");
        assert_eq!(all.filter.as_deref(), Some("s.channelid <> 'x'"));
        let bad = ArchiveJob {
            preset: Some(Preset::Mattermost),
            filter: Some("true) OR (true".into()),
            ..ArchiveJob::default()
        };
        assert!(
            expand(&bad).is_err(),
            "a --where that is not one condition cannot undo the pin filter"
        );
    }
}
