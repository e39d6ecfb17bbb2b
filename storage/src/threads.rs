//! sqlx runs each SQLite connection on a thread of its own. A message's
//! commit must come after deliveries on a busy core, never between two of
//! them (storage never delays delivery): those threads run at a lower
//! scheduling priority, nice [`NICE`], than the runtime's. On one core, a
//! direct-message round trip with history on then stays at the relay floor
//! at the median and its p99 drops by about a third (docs/performance.md).
//! Under full load the log writer still gets its share, and the bounded log
//! queue holds senders back if it falls behind.

/// The nice value of the SQLite threads (0 is the default, 19 the lowest).
pub(crate) const NICE: i32 = 10;

/// The start of sqlx's name for them (`sqlx-sqlite-worker-N`), as far as
/// the kernel keeps a thread's name (15 bytes).
pub(crate) const THREAD_NAME: &str = "sqlx-sqlite-wor";

/// Lowers the priority of every SQLite thread of this process; called once
/// a connection (and so its thread) exists. Linux only, where a thread's
/// nice value is its own; elsewhere nothing changes.
pub(crate) fn lower_sqlite_threads() {
    #[cfg(target_os = "linux")]
    for tid in sqlite_threads() {
        // SAFETY: setpriority touches no memory of ours; a thread that has
        // ended meanwhile only makes it fail, which changes nothing.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, tid, NICE);
        }
    }
}

/// The ids of this process's SQLite threads.
#[cfg(target_os = "linux")]
pub(crate) fn sqlite_threads() -> Vec<libc::id_t> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with(THREAD_NAME))
        })
        .filter_map(|task| task.file_name().to_str()?.parse().ok())
        .collect()
}
