//! How the process gives memory back (issue 10, item 1).
//!
//! glibc's malloc keeps freed memory for reuse: after a flood of failed authentications the
//! 19 MiB argon2 blocks and the per-request buffers of thousands of connections stay in the
//! process (RSS grew to gigabytes before argon2 was bounded, and stayed above the 64 MiB
//! target after). mimalloc was measured and did worse here (see the README's benchmark
//! section), so the system allocator stays, told two things at start and trimmed while idle:
//!
//! - allocations of 1 MiB or more are always their own mapping (a fixed `M_MMAP_THRESHOLD`
//!   turns off glibc's sliding threshold, which otherwise moves large blocks into the heap
//!   once one has been freed), so freeing them returns them to the system at once;
//! - at most two arenas per core (`M_ARENA_MAX`) instead of eight, so that free memory is not
//!   spread over an arena per worker thread;
//! - [`trim`] (`malloc_trim(0)`) every few seconds hands back free pages in the middle of
//!   the heaps too, which `free` alone does only at the top.
//!
//! On other C libraries these are no-ops.

/// Sets the allocator's policy; call once, before the server's threads start.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let arenas = i32::try_from(2 * cores).unwrap_or(i32::MAX);
        // SAFETY: mallopt only changes malloc's parameters; both values are in range.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Returns free heap pages to the system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory malloc holds free; it takes malloc's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Trims every `every` until the task is dropped.
pub async fn trim_periodically(every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Off the async workers: it walks the heaps under malloc's locks.
        let _ = tokio::task::spawn_blocking(trim).await;
    }
}
