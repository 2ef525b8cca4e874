//! Jobs: long-running, cancellable, single-runner work that the commands and the scheduler share.

pub mod backup;
