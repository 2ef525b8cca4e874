//! How many heap pages the next ctid batch spans.

use std::time::Duration;

/// A batch should stay near this, so writers waiting on its row locks wait little. 100 ms
/// leaves room under a 250 ms ceiling for a batch that meets a busy machine or a checkpoint.
pub const TARGET_BATCH: Duration = Duration::from_millis(100);
/// Most heap pages one ctid batch may span (64 MB at 8 kB pages).
pub const MAX_PAGES: i64 = 8192;

/// Pages for the next ctid batch: aim at `batch_size` rows, grow over pages with nothing to
/// move, and shrink when a batch took too long (its row locks block writers meanwhile).
pub fn next_pages(pages: i64, rows: i64, batch_size: i64, took: Duration) -> i64 {
    let aimed = if rows > 0 {
        let per_page = rows as f64 / pages as f64;
        ((batch_size as f64 / per_page).ceil() as i64).min(pages * 4)
    } else {
        pages * 2
    };
    // Never more pages than the last batch's pace fits in the target: too slow scales the
    // range down in proportion, and a fast batch does not grow it past the target either
    // (with children a batch moves several times its parent rows: aiming at the row count
    // alone swung between fast and slow batches).
    let secs = took.as_secs_f64();
    let aimed = if secs > 0.0 {
        let fits = (pages as f64 * TARGET_BATCH.as_secs_f64() / secs).floor() as i64;
        fits.min(aimed)
    } else {
        aimed
    };
    aimed.clamp(1, MAX_PAGES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ranges_adapt_to_density_and_time() {
        let fast = Duration::from_millis(20);
        assert_eq!(next_pages(100, 5000, 5000, fast), 100);
        assert_eq!(next_pages(100, 2500, 5000, fast), 200);
        assert_eq!(next_pages(100, 0, 5000, fast), 200);
        assert_eq!(next_pages(100, 1, 5000, fast), 400, "growth is bounded per step");
        assert_eq!(next_pages(100, 5000, 5000, Duration::from_millis(300)), 33);
        assert_eq!(next_pages(MAX_PAGES, 0, 5000, fast), MAX_PAGES);
        assert_eq!(next_pages(1, 10_000, 5000, fast), 1);
        // Rows say 200 pages, the pace says 100 ms fits 80: the pace wins.
        assert_eq!(next_pages(100, 2500, 5000, Duration::from_millis(125)), 80);
    }
}
