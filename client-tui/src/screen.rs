//! The full-screen front end: sets up the terminal, runs the event loop
//! (terminal events from crossterm's async `EventStream`, network events,
//! signals), and restores the terminal on every way out: normal exit,
//! error, panic, SIGTERM/SIGHUP.

use std::io::{self, Stdout};
use std::time::Duration;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as TermEvent, EventStream,
};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use futures_util::StreamExt;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use crate::settings::Settings;
use crate::state::{Frontend, Link};
use crate::update::{update, Event};

/// Time allowed, after quitting, for the goodbye to reach the server.
const QUIT_GRACE: Duration = Duration::from_secs(2);

/// Owns the terminal while the interface runs; puts it back when dropped.
pub struct TerminalGuard {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    /// Raw mode, alternate screen, mouse and bracketed paste; and a panic
    /// hook that restores the terminal before the panic message is printed.
    pub fn enter() -> io::Result<TerminalGuard> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        let setup = || -> io::Result<Terminal<CrosstermBackend<Stdout>>> {
            enable_raw_mode()?;
            execute!(
                io::stdout(),
                EnterAlternateScreen,
                EnableMouseCapture,
                EnableBracketedPaste
            )?;
            Terminal::new(CrosstermBackend::new(io::stdout()))
        };
        match setup() {
            Ok(terminal) => Ok(TerminalGuard { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal back as it was (idempotent; errors ignored, as there
/// is nothing better to do with them on the way out).
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// SIGTERM and SIGHUP, which end the client cleanly.
pub struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                hangup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for either signal.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.hangup.recv() => {}
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    }
}

pub async fn run(settings: Settings, utc_offset_secs: i32) -> anyhow::Result<()> {
    let mut state = crate::initial_state(&settings, Frontend::Screen, utc_offset_secs);
    let mut signals = Signals::new()?;
    let mut guard = TerminalGuard::enter()?;
    let size = guard.terminal.size()?;
    state.viewport = (size.width, size.height);
    let mut autolog = crate::autolog::start(&settings, utc_offset_secs)?;
    let mut net = crate::net::spawn(crate::target(&settings));
    let mut terminal_events = EventStream::new();
    let mut give_up: Option<tokio::time::Instant> = None;
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        guard
            .terminal
            .draw(|frame| crate::view::draw(&state, frame))?;
        let event = tokio::select! {
            event = terminal_events.next() => match event {
                Some(Ok(TermEvent::Key(key))) => Event::Key(key),
                Some(Ok(TermEvent::Mouse(mouse))) => Event::Mouse(mouse),
                Some(Ok(TermEvent::Paste(text))) => Event::Paste(text),
                Some(Ok(TermEvent::Resize(cols, rows))) => Event::Resize(cols, rows),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(anyhow::anyhow!("reading the terminal failed: {e}")),
                None => Event::InputClosed,
            },
            event = net.events.recv() => match event {
                Some(event) => Event::Net(event),
                None => break,
            },
            Some(report) = net.transfers.recv() => Event::Transfer(report),
            _ = signals.recv() => Event::InputClosed,
            _ = sleep_until(give_up), if give_up.is_some() => break,
            // Only while a countdown is shown: an idle client stays idle.
            _ = ticks.tick(), if matches!(state.link, Link::Disconnected { .. }) => Event::Tick,
        };
        state.now_ms = crate::now_ms();
        let commands = update(&mut state, event);
        if let Some(log) = &mut autolog {
            log.record(&state.journal);
        }
        state.journal.clear();
        crate::dispatch(&mut state, &net, commands);
        if state.link == Link::Closed {
            break;
        }
        if state.quitting && give_up.is_none() {
            give_up = Some(tokio::time::Instant::now() + QUIT_GRACE);
        }
    }
    net.task.abort();
    drop(guard);
    Ok(())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
