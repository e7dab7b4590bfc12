//! Monitor lines on stdout, each stamped with the time it is printed, and a spinner on stderr
//! (only on a terminal) while nothing happens for a few seconds. Shared by the evaluation and
//! deployment monitors.

use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};

use super::format::timestamp;
use super::monitor::Line;
use crate::output::age::human_duration;

/// Quiet time after which the spinner appears.
const SPINNER_AFTER: Duration = Duration::from_secs(3);

/// The printer of a monitor's lines and its spinner.
pub struct Progress {
    started: Instant,
    quiet_since: Instant,
    bar: Option<ProgressBar>,
}

impl Default for Progress {
    fn default() -> Progress {
        Progress::new()
    }
}

impl Progress {
    /// Starts the clock of the elapsed time the spinner shows.
    pub fn new() -> Progress {
        let now = Instant::now();
        Progress {
            started: now,
            quiet_since: now,
            bar: None,
        }
    }

    /// Prints lines, stamped with the time now.
    pub fn print(&mut self, lines: Vec<Line>) {
        if lines.is_empty() {
            return;
        }
        self.quiet_since = Instant::now();
        let now = timestamp(SystemTime::now());
        let text: Vec<String> = lines.iter().map(|l| l.render(&now)).collect();
        let print = || println!("{}", text.join("\n"));
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    /// Shows `waiting` and the elapsed time on the spinner, once quiet for a few seconds.
    pub fn tick(&mut self, waiting: &str) {
        if self.bar.is_none() && self.quiet_since.elapsed() >= SPINNER_AFTER {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("    {spinner} {msg}") {
                bar.set_style(style);
            }
            self.bar = Some(bar);
        }
        let Some(bar) = &self.bar else { return };
        let elapsed = human_duration(self.started.elapsed());
        bar.set_message(format!("{waiting} ({elapsed})"));
        bar.tick();
    }

    /// Removes the spinner.
    pub fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
