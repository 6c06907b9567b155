//! Handing freed memory back to the system. glibc's allocator keeps what
//! its per-thread arenas freed (a burst of replays to many viewers leaves
//! megabytes resident long after they left) unless asked to trim. Both ends
//! call [`hand_back_soon`] after such a burst (a replay sent, a viewer
//! gone); the trim runs once no call came for [`QUIET`], on a thread of
//! its own, so a crowd leaving costs one trim, after the last of it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;

/// How long a trim waits for the burst to end.
pub const QUIET: Duration = Duration::from_millis(500);

/// The last call, while a trim is scheduled.
static LAST_CALL: Mutex<Option<Instant>> = Mutex::new(None);

/// Schedules a trim of the allocator's free memory for when no call came
/// for [`QUIET`].
pub fn hand_back_soon() {
    let scheduled = lock(&LAST_CALL).replace(Instant::now()).is_some();
    if scheduled {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("memory-trim".into())
        .spawn(trim_when_quiet);
    if spawned.is_err() {
        *lock(&LAST_CALL) = None;
    }
}

/// Waits until [`QUIET`] passed since the last call, then trims.
fn trim_when_quiet() {
    loop {
        let wait = {
            let mut last = lock(&LAST_CALL);
            let since = last.map_or(QUIET, |at| at.elapsed());
            if since >= QUIET {
                *last = None;
                break;
            }
            QUIET - since
        };
        std::thread::sleep(wait);
    }
    trim();
}

/// Returns the allocator's free pages (also those inside its heaps).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators hand memory back by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
