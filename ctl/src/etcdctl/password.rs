//! Reading passwords the way etcdctl 3.4 does.
//!
//! etcdctl asks with the `speakeasy` library: the prompt goes to stdout, `stty -echo` and
//! `stty echo` run on etcdctl's own stdin, stdout and stderr around the read, the answer is
//! one line read from stdin (not from `/dev/tty`), and a newline follows on stdout. So a
//! password can be piped in, and with a stdin that is not a terminal the two `stty`
//! complaints appear on stderr, as they do with etcdctl. Running `stty` as speakeasy does
//! (rather than switching echo off through termios, as the `rpassword` crate does on
//! `/dev/tty`) keeps all of that identical.

use std::io::{BufRead, IsTerminal, Write};
use std::process::Command;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Asks for a password: `prompt` on stdout, echo off while one line is read from stdin.
///
/// On a terminal, a signal that would end etcdctl while echo is off turns echo back on
/// first and exits with status 255, as speakeasy does. The handlers cannot be removed
/// again (tokio keeps them for the life of the process), so afterwards such a signal
/// ends etcdctl with the status a shell reports for it (128 + its number).
pub async fn ask(prompt: &str) -> std::io::Result<String> {
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    let mut signals = std::io::stdin()
        .is_terminal()
        .then(Signals::watch)
        .flatten();
    stty("-echo");
    let read = tokio::task::spawn_blocking(read_line);
    let line = match signals.as_mut() {
        None => read.await,
        Some(signals) => tokio::select! {
            line = read => line,
            _ = signals.next() => {
                stty("echo");
                std::process::exit(255);
            }
        },
    };
    stty("echo");
    println!();
    if let Some(mut signals) = signals {
        tokio::spawn(async move { std::process::exit(128 + signals.next().await) });
    }
    line.map_err(std::io::Error::other)?
}

/// The signals speakeasy watches while echo is off.
struct Signals(Vec<(i32, Signal)>);

impl Signals {
    /// `None` if the handlers cannot be installed.
    fn watch() -> Option<Signals> {
        let numbers = [1, 2, 3, 15]; // SIGHUP, SIGINT, SIGQUIT, SIGTERM
        let streams = numbers
            .into_iter()
            .map(|n| signal(SignalKind::from_raw(n)).map(|s| (n, s)))
            .collect::<Result<_, _>>()
            .ok()?;
        Some(Signals(streams))
    }

    /// The number of the next signal that arrives.
    async fn next(&mut self) -> i32 {
        let waits = self.0.iter_mut().map(|(n, s)| {
            let n = *n;
            Box::pin(async move {
                s.recv().await;
                n
            })
        });
        futures::future::select_all(waits).await.0
    }
}

/// Reads a whitespace-delimited word from stdin, as Go's `fmt.Scanf("%s")` does for
/// `--interactive=false`: leading blanks skipped, nothing read at all gives "".
pub async fn scan_word() -> String {
    tokio::task::spawn_blocking(|| word(std::io::stdin().lock()))
        .await
        .unwrap_or_default()
}

fn word(input: impl BufRead) -> String {
    let mut word = Vec::new();
    for byte in input.bytes() {
        let Ok(b) = byte else { break };
        match b {
            b' ' | b'\t' if word.is_empty() => continue,
            b' ' | b'\t' | b'\n' | b'\r' => break,
            _ => word.push(b),
        }
    }
    String::from_utf8_lossy(&word).into_owned()
}

/// One line of stdin without its `\n` (or `\r\n`); what there is at end of input.
fn read_line() -> std::io::Result<String> {
    line(&mut std::io::stdin().lock())
}

fn line(input: &mut impl BufRead) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    input.read_until(b'\n', &mut bytes)?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Runs `stty` on our stdin, stdout and stderr (its complaints are etcdctl's too).
fn stty(arg: &str) {
    let _ = Command::new("stty").arg(arg).status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_as_scanf_reads_it() {
        assert_eq!(word(&b"  p4 more\n"[..]), "p4");
        assert_eq!(word(&b"pw\n"[..]), "pw");
        assert_eq!(word(&b""[..]), "");
        assert_eq!(word(&b"\nlater"[..]), "");
    }

    #[test]
    fn a_line_without_its_end() {
        assert_eq!(line(&mut &b"secret\r\nnext\n"[..]).unwrap(), "secret");
        assert_eq!(line(&mut &b"last"[..]).unwrap(), "last");
        assert_eq!(line(&mut &b""[..]).unwrap(), "");
    }
}
