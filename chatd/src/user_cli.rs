//! `chatd user ...`: account administration on the server's database (the
//! SQLite file, or PostgreSQL with `[database] url`).
//!
//! Safe while the server runs: SQLite is in WAL mode with a busy timeout
//! (PostgreSQL needs nothing), and the server polls the account events
//! this writes, ending the sessions of accounts disabled or deleted here.

use std::io::{BufRead, IsTerminal, Read};

use anyhow::{anyhow, bail, Context};
use chatd::config::Config;
use chatd_plugin_auth::password::MAX_PASSWORD_BYTES;
use chatd_plugin_auth::{check_new, Account, AccountError, Accounts, AuthConfig, Passwords};
use chatd_storage::Database;
use clap::Subcommand;

#[derive(Clone, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is prompted for without echo, or read
    /// as one line from standard input when that is not a terminal.
    Add {
        name: String,
        /// Give the account the admin role.
        #[arg(long)]
        admin: bool,
    },
    /// Set a new password (prompted for, or one line from standard input).
    Passwd { name: String },
    /// List the accounts.
    List,
    /// Disable an account: it cannot log in, and a running server ends its
    /// sessions.
    Disable { name: String },
    /// Enable a disabled account again.
    Enable { name: String },
    /// Delete an account: a running server ends its sessions and the name
    /// becomes free.
    Delete { name: String },
}

/// Runs one account command against the database of `config`.
pub fn run(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let auth_entry = config.plugins.iter().find(|p| p.name == "auth");
    if !auth_entry.is_some_and(|p| p.enabled) {
        eprintln!(
            "note: the auth plugin is not enabled in {}; accounts take effect once it is",
            config.source_name
        );
    }
    let auth = AuthConfig::from_plugin_config(&config.plugin_config("auth"))?;
    let passwords = Passwords::new(&auth.argon2)
        .map_err(|e| anyhow!("{}: auth plugin argon2 settings: {e}", config.source_name))?;
    // Passwords are read and hashed before the database is opened, so a
    // mistyped password leaves nothing half done.
    let new_hash = match &command {
        UserCommand::Add { .. } | UserCommand::Passwd { .. } => {
            let password = read_new_password(auth.min_password_length)?;
            Some(passwords.hash(&password)?)
        }
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let db = Database::open(&config.database_options()).await?;
        let result = apply(&Accounts::new(db.clone()), command, new_hash, &auth).await;
        db.close().await;
        result
    })
}

async fn apply(
    accounts: &Accounts,
    command: UserCommand,
    new_hash: Option<String>,
    auth: &AuthConfig,
) -> anyhow::Result<()> {
    let hash = || new_hash.clone().expect("hashed above");
    let watch = format!(
        "a running server ends its sessions within {} ms",
        auth.watch_interval_ms
    );
    match command {
        UserCommand::Add { name, admin } => {
            let account = accounts
                .create(&name, &hash(), admin)
                .await
                .map_err(explain)?;
            let role = if account.admin { " (admin)" } else { "" };
            println!("created account {}{role}", account.name);
        }
        UserCommand::Passwd { name } => {
            accounts
                .set_password_hash(&name, &hash())
                .await
                .map_err(explain)?;
            println!("changed the password of {name}");
        }
        UserCommand::List => {
            let list = accounts.list().await.map_err(explain)?;
            print!("{}", format_list(&list));
        }
        UserCommand::Disable { name } => {
            accounts.set_disabled(&name, true).await.map_err(explain)?;
            println!("disabled {name}; {watch}");
        }
        UserCommand::Enable { name } => {
            accounts.set_disabled(&name, false).await.map_err(explain)?;
            println!("enabled {name}");
        }
        UserCommand::Delete { name } => {
            accounts.delete(&name).await.map_err(explain)?;
            println!("deleted {name}; {watch}");
        }
    }
    Ok(())
}

fn explain(e: AccountError) -> anyhow::Error {
    match e {
        AccountError::NotFound(name) => {
            anyhow!("there is no account named '{name}'; `chatd user list` shows them")
        }
        other => other.into(),
    }
}

/// Asks twice on a terminal; otherwise reads one line from stdin.
fn read_new_password(min_length: usize) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = rpassword::prompt_password("New password: ")
            .context("cannot read the password from the terminal")?;
        check_new(&first, min_length).map_err(|e| anyhow!("{e}; nothing was changed"))?;
        let second = rpassword::prompt_password("Repeat it: ")
            .context("cannot read the password from the terminal")?;
        if first != second {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    } else {
        // Bounded read: one line, no longer than a password may be.
        let mut line = String::new();
        stdin
            .lock()
            .take(MAX_PASSWORD_BYTES as u64 + 2)
            .read_line(&mut line)
            .context("cannot read the password from standard input (one line of UTF-8 expected)")?;
        let password = line
            .strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(&line)
            .to_string();
        if password.is_empty() {
            bail!("no password on standard input; pipe it as one line, e.g. `printf '%s\\n' \"$PASSWORD\" | chatd user add NAME`");
        }
        password
    };
    check_new(&password, min_length).map_err(|e| anyhow!("{e}; nothing was changed"))?;
    Ok(password)
}

fn format_list(accounts: &[Account]) -> String {
    if accounts.is_empty() {
        return "no accounts; create one with `chatd user add NAME --admin`\n".to_string();
    }
    let width = accounts
        .iter()
        .map(|a| a.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:<width$}  {:<5}  {:<8}  {:<20}  LAST LOGIN\n",
        "NAME", "ROLE", "STATUS", "CREATED"
    );
    for a in accounts {
        out.push_str(&format!(
            "{:<width$}  {:<5}  {:<8}  {:<20}  {}\n",
            a.name,
            if a.admin { "admin" } else { "user" },
            if a.disabled { "disabled" } else { "active" },
            format_utc(a.created_at),
            a.last_login_at
                .map_or_else(|| "never".to_string(), format_utc),
        ));
    }
    out
}

/// `YYYY-MM-DD HH:MM UTC` from milliseconds since the epoch.
fn format_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(format_utc(1_795_000_000_000), "2026-11-18 11:06 UTC");
    }
}
