//! Progress bars on stderr (only on a terminal, never with --quiet).

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use lamin_sidecar::progress::Progress;

/// A bar per stage (hashing, saving, …), in bytes.
pub struct Bar {
    shown: bool,
    bar: Mutex<ProgressBar>,
}

impl Bar {
    pub fn new(quiet: bool) -> Bar {
        Bar {
            shown: !quiet && std::io::stderr().is_terminal(),
            bar: Mutex::new(ProgressBar::hidden()),
        }
    }
}

impl Progress for Bar {
    fn start(&self, what: &str, total: u64) {
        if !self.shown {
            return;
        }
        if total == 0 {
            // A stage without a total (a merge in the database): its name and
            // how long it has taken.
            let pb = ProgressBar::new_spinner();
            pb.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("static template"),
            );
            pb.set_message(what.to_string());
            pb.enable_steady_tick(std::time::Duration::from_millis(200));
            *self.bar.lock().expect("progress bar") = pb;
            return;
        }
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ({eta})",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        pb.set_message(what.to_string());
        *self.bar.lock().expect("progress bar") = pb;
    }

    fn add(&self, n: u64) {
        self.bar.lock().expect("progress bar").inc(n);
    }

    fn finish(&self) {
        self.bar.lock().expect("progress bar").finish_and_clear();
    }
}
