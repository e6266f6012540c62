//! Standard output that never panics: `println!` panics when the reader went away
//! (`writeback plan | head`). Once stdout is closed, further output is dropped quietly.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes one line to stdout, or nothing once stdout is gone.
pub fn line(text: impl std::fmt::Display) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{text}").is_err() {
        CLOSED.store(true, Ordering::Relaxed);
    }
}
