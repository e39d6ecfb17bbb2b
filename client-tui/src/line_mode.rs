//! The line mode (`--line`): commands and text from standard input, one
//! event per line on standard output (format in [`crate::lines`]). Standard
//! input is read only while connected, so a script's lines wait for the
//! connection instead of failing; end of input quits (after running file
//! transfers finish).

use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

use crate::settings::Settings;
use crate::state::{Body, Frontend, Link};
use crate::update::{update, Event};

/// Longest input line accepted, in bytes.
pub const MAX_INPUT_LINE: usize = 64 * 1024;
/// Time allowed, after quitting, for the server to say goodbye.
const QUIT_GRACE: Duration = Duration::from_secs(5);
/// Free command slots needed before another input line is read.
const HEADROOM: usize = 8;
/// Longest wait for the replies to earlier lines before the next line is
/// read anyway (the server answers every request; this only bounds a stall).
const REPLY_WAIT: Duration = Duration::from_secs(10);

pub async fn run(settings: Settings, utc_offset_secs: i32) -> anyhow::Result<()> {
    let password = std::env::var("CHATD_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    let new_password = std::env::var("CHATD_NEW_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    let frontend = Frontend::Line {
        password: password.clone(),
        new_password,
    };
    let mut state = crate::initial_state(&settings, frontend, utc_offset_secs);
    if state.user.is_some() {
        state.password = password;
    }
    let mut autolog = crate::autolog::start(&settings, utc_offset_secs)?;
    let mut net = crate::net::spawn(crate::target(&settings));
    let mut input = FramedRead::new(
        tokio::io::stdin(),
        LinesCodec::new_with_max_length(MAX_INPUT_LINE),
    );
    let mut stdout = tokio::io::stdout();
    let mut input_open = true;
    let mut give_up: Option<tokio::time::Instant> = None;
    let mut signals = crate::screen::Signals::new()?;
    // Lines run in order: the next one is read once the server answered
    // the earlier ones, so that what is printed follows the input's order
    // (a bad command's error after the replies to the lines before it).
    let mut answered_by: Option<tokio::time::Instant> = None;
    loop {
        let waiting = !state.pending.is_empty();
        if !waiting {
            answered_by = None;
        } else if answered_by.is_none() {
            answered_by = Some(tokio::time::Instant::now() + REPLY_WAIT);
        }
        let patient = answered_by.is_some_and(|t| t > tokio::time::Instant::now());
        let reading = input_open
            && !state.quitting
            && state.link == Link::Connected
            && !patient
            && net.commands.capacity() >= HEADROOM;
        let event = tokio::select! {
            event = net.events.recv() => match event {
                Some(event) => Event::Net(event),
                None => break,
            },
            Some(report) = net.transfers.recv() => Event::Transfer(report),
            line = input.next(), if reading => match line {
                Some(Ok(line)) => Event::Line(line),
                Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                    let index = state.current;
                    state.note(index, Body::Error {
                        code: "input".into(),
                        message: format!("input line longer than {MAX_INPUT_LINE} bytes; it was skipped"),
                    });
                    print_journal(&mut state, &mut autolog, &mut stdout).await?;
                    continue;
                }
                Some(Err(LinesCodecError::Io(e))) => {
                    tracing::warn!(error = %e, "reading standard input");
                    input_open = false;
                    Event::InputEnded
                }
                None => {
                    input_open = false;
                    Event::InputEnded
                }
            },
            _ = signals.recv() => Event::InputClosed,
            _ = sleep_until(answered_by), if patient && input_open => continue,
            _ = sleep_until(give_up), if give_up.is_some() => break,
        };
        state.now_ms = crate::now_ms();
        let commands = update(&mut state, event);
        crate::dispatch(&mut state, &net, commands);
        print_journal(&mut state, &mut autolog, &mut stdout).await?;
        if state.link == Link::Closed {
            break;
        }
        if state.quitting && give_up.is_none() {
            give_up = Some(tokio::time::Instant::now() + QUIT_GRACE);
        }
    }
    stdout.flush().await?;
    net.task.abort();
    Ok(())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn print_journal(
    state: &mut crate::state::State,
    autolog: &mut Option<crate::autolog::Autolog>,
    stdout: &mut tokio::io::Stdout,
) -> std::io::Result<()> {
    if state.journal.is_empty() {
        return Ok(());
    }
    if let Some(log) = autolog {
        log.record(&state.journal);
    }
    let mut out = String::new();
    for (conv, entry) in state.journal.drain(..) {
        out.push_str(&crate::lines::format(&conv, &entry));
        out.push('\n');
    }
    stdout.write_all(out.as_bytes()).await?;
    stdout.flush().await
}
