//! A time limit per test: a hung test ends its test binary within minutes, naming itself,
//! instead of running into CI's 90-minute limit with no clue which test hung.
//!
//! libtest has no per-test timeout on stable, and cargo-nextest would run each test in its own
//! process, one cluster each. So the harness keeps one: every helper a test calls first
//! registers the test's thread (libtest names it after the test); the thread's exit
//! unregisters it; a watchdog thread exits the process when a registration outlives the limit.
//! The clusters' reapers clean up after the exit, as after a kill.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// Default limit per test; DBTOOL_TEST_TIMEOUT_SECS overrides it.
const DEFAULT_LIMIT: Duration = Duration::from_secs(480);

/// Running tests: thread id → (test name, when it registered).
static RUNNING: Mutex<Option<HashMap<std::thread::ThreadId, (String, Instant)>>> = Mutex::new(None);

/// Unregisters its thread when the thread exits, passed or panicked.
struct Registration;

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut running) = RUNNING.lock() {
            if let Some(map) = running.as_mut() {
                map.remove(&std::thread::current().id());
            }
        }
    }
}

thread_local! {
    static REGISTERED: RefCell<Option<Registration>> = const { RefCell::new(None) };
}

/// Registers the calling test, once per test thread, and starts the watchdog on first use.
/// Threads that are not a test's (unnamed helpers, tokio workers, main) are left alone.
pub(crate) fn arm() {
    let thread = std::thread::current();
    let Some(name) = thread.name() else { return };
    if name == "main" || name.starts_with("tokio-") {
        return;
    }
    let _ = REGISTERED.try_with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_some() {
            return;
        }
        let mut running = RUNNING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        running
            .get_or_insert_with(HashMap::new)
            .insert(thread.id(), (name.to_string(), Instant::now()));
        *slot = Some(Registration);
    });
    static WATCHDOG: Once = Once::new();
    WATCHDOG.call_once(|| {
        let limit = limit();
        std::thread::Builder::new()
            .name("dbtool-test-watchdog".into())
            .spawn(move || watch(limit))
            .expect("spawn the test watchdog thread");
    });
}

fn limit() -> Duration {
    match std::env::var("DBTOOL_TEST_TIMEOUT_SECS") {
        Ok(raw) => Duration::from_secs(
            raw.trim()
                .parse()
                .unwrap_or_else(|_| panic!("DBTOOL_TEST_TIMEOUT_SECS={raw:?} is not a number of seconds such as 480")),
        ),
        Err(_) => DEFAULT_LIMIT,
    }
}

fn watch(limit: Duration) {
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let running = RUNNING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let hung = running.iter().flatten().find(|(_, (_, since))| since.elapsed() > limit);
        if let Some((_, (test, _))) = hung {
            // Straight to fd 2: eprintln! would land in the capture this thread inherited from
            // the test that spawned it, which nobody prints once we exit. 101 is what a failed
            // test binary returns.
            let _ = writeln!(
                std::io::stderr().lock(),
                "\ntest {test} has run for over {}s, the per-test limit (DBTOOL_TEST_TIMEOUT_SECS): \
                 it hangs; ending this test binary so the suite fails now",
                limit.as_secs()
            );
            std::process::exit(101);
        }
    }
}
