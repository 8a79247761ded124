//! The progress bar etcdctl draws with `gopkg.in/cheggaaa/pb.v1` (`check perf`), frame for
//! frame: on stdout whatever stdout is, redrawn every 200 ms after a `\r`, as
//! ` 3 / 60 Booom      !   5.00% 00m56s`. The bar itself (`Bom !`: start, done, head,
//! empty, end) is only drawn when the controlling terminal reports a width, which pb reads
//! from `/dev/tty`, not from stdout; without one the frame is the counters, the percentage
//! and the time left. Finishing draws the time taken and ends the line.

use std::fs::File;
use std::io::Write;
use std::time::Duration;

use tokio::time::Instant;

use super::duration;

/// How often pb redraws.
const REFRESH: Duration = Duration::from_millis(200);

/// A bar counting seconds up to `total`, one step a second, as `check perf` drives it.
pub struct SecondsBar {
    total: u64,
    tty: Option<File>,
}

impl SecondsBar {
    /// A bar for `total` seconds.
    pub fn new(total: u64) -> SecondsBar {
        SecondsBar {
            total,
            tty: File::open("/dev/tty").ok(),
        }
    }

    /// Draws the bar from now until `total` seconds have passed, then finishes it.
    pub async fn run(self) {
        let start = Instant::now();
        let (mut current, mut shown, mut changed) = (0, 0, start);
        let mut refresh = start;
        self.draw(current, Frame::Running(None));
        loop {
            let step = start + Duration::from_secs(current + 1);
            if step <= refresh + REFRESH {
                tokio::time::sleep_until(step).await;
                current += 1;
                if current == self.total {
                    self.draw(current, Frame::Finished(start.elapsed()));
                    print_out("\n");
                    return;
                }
                continue;
            }
            refresh += REFRESH;
            tokio::time::sleep_until(refresh).await;
            // pb notes a change when it redraws, not when the count moves.
            if current != shown {
                (shown, changed) = (current, Instant::now());
            }
            // The pace is taken up to the redraw that saw the last step.
            let left = (current > 0).then(|| {
                let per_step = (changed - start) / current as u32;
                (per_step * (self.total - current) as u32).saturating_sub(changed.elapsed())
            });
            self.draw(current, Frame::Running(left));
        }
    }

    fn draw(&self, current: u64, frame: Frame) {
        let width = self.tty.as_ref().map_or(0, terminal_width);
        print_out(&format!("\r{}", render(current, self.total, frame, width)));
    }
}

/// What follows the percentage.
#[derive(Debug, Clone, Copy)]
enum Frame {
    /// The time left, estimated from the pace so far (`None` before the first step).
    Running(Option<Duration>),
    /// The time the whole run took.
    Finished(Duration),
}

/// One frame of pb's bar, `width` columns wide when the terminal has a width (0: none).
fn render(current: u64, total: u64, frame: Frame, width: usize) -> String {
    let counters = format!(" {current} / {total} ");
    let percent = format!(" {:6.2}%", current as f64 / total as f64 * 100.0);
    let whole_secs = |d: Duration| Duration::from_secs(d.as_secs());
    let time = match frame {
        Frame::Finished(took) => format!(" {}", duration::format(whole_secs(took))),
        Frame::Running(Some(left)) if left.as_secs() > 0 => {
            format!(" {:02}m{:02}s", left.as_secs() / 60, left.as_secs() % 60)
        }
        Frame::Running(_) => String::new(),
    };
    let room = width as i64 - (counters.len() + 2 + percent.len() + time.len()) as i64;
    let bar = if room > 0 {
        let size = room as usize;
        let done = ((current as f64 / total as f64) * size as f64).ceil() as usize;
        let done = done.min(size);
        let empty = size - done;
        let filled = match (done, empty) {
            (0, _) => String::new(),
            (_, 0) => "o".repeat(done),
            _ => format!("{}m", "o".repeat(done - 1)),
        };
        format!("B{filled}{}!", " ".repeat(empty))
    } else {
        String::new()
    };
    let line = format!("{counters}{bar}{percent}{time}");
    format!("{line:<width$}")
}

/// The column count of the controlling terminal (0 when it does not say).
fn terminal_width(tty: &File) -> usize {
    rustix::termios::tcgetwinsize(tty).map_or(0, |size| size.ws_col as usize)
}

fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_without_a_terminal_width() {
        assert_eq!(render(0, 60, Frame::Running(None), 0), " 0 / 60    0.00%");
        let left = Duration::from_millis(58_900);
        assert_eq!(
            render(1, 60, Frame::Running(Some(left)), 0),
            " 1 / 60    1.67% 00m58s"
        );
        assert_eq!(
            render(59, 60, Frame::Running(Some(Duration::from_millis(900))), 0),
            " 59 / 60   98.33%"
        );
        let took = Duration::from_millis(60_004);
        assert_eq!(
            render(60, 60, Frame::Finished(took), 0),
            " 60 / 60  100.00% 1m0s"
        );
    }

    #[test]
    fn frames_on_a_terminal_fill_its_width() {
        let empty = render(0, 60, Frame::Running(None), 100);
        assert_eq!(empty, format!(" 0 / 60 B{}!   0.00%", " ".repeat(82)));
        let left = Duration::from_secs(59);
        let one = render(1, 60, Frame::Running(Some(left)), 100);
        assert_eq!(
            one,
            format!(" 1 / 60 Bom{}!   1.67% 00m59s", " ".repeat(73))
        );
        let done = render(60, 60, Frame::Finished(Duration::from_secs(60)), 40);
        assert_eq!(done, format!(" 60 / 60 B{}! 100.00% 1m0s", "o".repeat(16)));
        assert_eq!(done.len(), 40);
    }
}
