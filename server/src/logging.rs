//! Log output in etcd 3.4's default format (capnslog), e.g.
//! `2026-11-23 06:07:15.186061 I | embed: name = default`, so operators' log parsing keeps
//! working. The package shown is the tracing target given with `target: "..."`.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::{format::Writer, FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

struct Capnslog;

impl<S, N> FormatEvent<S, N> for Capnslog
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => 'E',
            Level::WARN => 'W',
            Level::INFO => 'I',
            Level::DEBUG => 'D',
            Level::TRACE => 'T',
        };
        let target = event.metadata().target();
        // Our own modules log under etcd's package names; others keep their crate name.
        let pkg = target.strip_prefix("etcd_server::").unwrap_or(target);
        let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.6f");
        write!(w, "{now} {level} | {pkg}: ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Installs the logger. `debug` is etcd's `--debug`; `ETCD_LOG_FILTER` (a tracing filter)
/// overrides the level per module.
pub fn init(debug: bool) {
    let default = if debug {
        "debug"
    } else {
        "info,openraft=error,sled=warn,h2=warn,tower=warn,hyper=warn"
    };
    let filter =
        EnvFilter::try_from_env("ETCD_LOG_FILTER").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .event_format(Capnslog)
        .try_init();
}

/// A fatal line as etcd's capnslog writes it (`C | package: ...`; tracing has no such level),
/// for the start-up errors etcd ends with `plog.Fatalf`.
pub fn critical(pkg: &str, message: &dyn fmt::Display) {
    let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.6f");
    eprintln!("{now} C | {pkg}: {message}");
}
