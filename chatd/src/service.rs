//! Talking to systemd (`Type=notify`, deploy/chatd.service): readiness once
//! the listeners are bound, reloads, shutdown, and the watchdog. Every call
//! does nothing when `NOTIFY_SOCKET` is unset (not started by systemd), and
//! a failure to notify is logged, never fatal.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

fn notify(what: &str, states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot tell systemd {what}");
    }
}

/// The listeners are bound: `READY=1`, with the addresses as the status
/// line `systemctl status` shows.
pub fn ready(status: &str) {
    notify(
        "the server is ready",
        &[NotifyState::Ready, NotifyState::Status(status)],
    );
}

/// A reload starts (`RELOADING=1` with the time, as systemd asks).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify("a reload starts", &[NotifyState::Reloading, now]),
        Err(_) => notify("a reload starts", &[NotifyState::Reloading]),
    }
}

/// A reload ended, applied or refused: the server runs (`READY=1`).
pub fn reloaded(status: &str) {
    ready(status);
}

/// Shutdown has begun (`STOPPING=1`).
pub fn stopping() {
    notify("the server is stopping", &[NotifyState::Stopping]);
}

/// When systemd runs a watchdog (`WatchdogSec=`), pings it (`WATCHDOG=1`)
/// at half the interval from a task on the server's runtime, so that a
/// runtime too stuck to run that task gets the service restarted. Ends
/// when `stop` is cancelled.
pub fn spawn_watchdog(stop: CancellationToken) {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let every = Duration::from_micros(usec) / 2;
    tracing::info!(
        interval_ms = every.as_millis() as u64,
        "systemd watchdog on: pinging it"
    );
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticks.tick() => notify("the server is alive", &[NotifyState::Watchdog]),
            }
        }
    });
}
