//! The process's memory allocator: which one is installed, and handing freed memory back to
//! the operating system between phases.
//!
//! The allocator is a measured choice: with thousands of TLS connections in one process,
//! jemalloc kept per-connection memory 17 % lower than glibc's malloc and, on 2 cores, was
//! the only one with no late frame at 8 000 TLS connections (mimalloc came close). It is
//! installed by this library, not by `main.rs`, so that the tests and benches that link the
//! library run on it too and every report's environment names the allocator really in use.
//! Features: `jemalloc` (default), `mimalloc`; neither: the C library's.

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The allocator in use, as reports name it.
#[cfg(feature = "jemalloc")]
pub(crate) const NAME: &str = "jemalloc";
#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
pub(crate) const NAME: &str = "mimalloc";
#[cfg(all(
    not(any(feature = "jemalloc", feature = "mimalloc")),
    target_os = "linux",
    target_env = "gnu"
))]
pub(crate) const NAME: &str = "system (glibc malloc)";
#[cfg(all(
    not(any(feature = "jemalloc", feature = "mimalloc")),
    target_os = "linux",
    target_env = "musl"
))]
pub(crate) const NAME: &str = "system (musl malloc)";
#[cfg(all(
    not(any(feature = "jemalloc", feature = "mimalloc")),
    not(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))
))]
pub(crate) const NAME: &str = "system";

/// Hands memory that was freed but is still cached by the allocator back to the operating
/// system. Called before a phase takes its baseline resident memory: otherwise what the
/// previous phase freed and the allocator kept counts as resident at the start of the
/// next, and memory per connection would depend on which phase ran first.
pub(crate) fn release_free_memory() {
    #[cfg(feature = "jemalloc")]
    {
        // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena's unused dirty pages.
        let name = b"arena.4096.purge\0";
        // SAFETY: a NUL-terminated control name; the call reads and writes nothing else.
        unsafe {
            tikv_jemalloc_sys::mallctl(
                name.as_ptr().cast(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            );
        }
    }
    #[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
    {
        // SAFETY: collects this thread's and abandoned heaps; no argument is a pointer.
        unsafe { libmimalloc_sys::mi_collect(true) };
    }
    #[cfg(all(
        not(any(feature = "jemalloc", feature = "mimalloc")),
        target_os = "linux",
        target_env = "gnu"
    ))]
    {
        // SAFETY: malloc_trim only releases free memory at the top of the heaps.
        unsafe { libc::malloc_trim(0) };
    }
}
