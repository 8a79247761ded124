//! Giving freed memory back to the system after maintenance.
//!
//! Compaction and defragmentation free a lot of memory at once (the purged history's
//! pages in sled's cache, the replaced database and its cache). glibc's allocator keeps
//! freed memory in its arenas for reuse, so without this the member's resident size stays
//! at its maintenance peak, which is what a pod's memory limit sees.

/// Returns the allocator's free memory to the system. Takes milliseconds; call it off the
/// async runtime, after a maintenance step.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it has no
    // preconditions and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
