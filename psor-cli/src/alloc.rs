//! glibc's allocator, told to keep what a pipeline frees.
//!
//! Every bulk command builds and frees buffers of a few hundred KiB per pipeline (the packed
//! commands, the replies). With glibc's defaults a worker thread's arena hands the freed top
//! of its heap back to the kernel (`madvise`) and the next pipeline faults the same pages in
//! again: a `verify` of 1M keys spent about a tenth of its client CPU in `madvise` and page
//! faults. Memory up to [`TRIM_THRESHOLD`] is kept for reuse instead; allocations from
//! [`MMAP_THRESHOLD`] up (a huge payload) still get pages of their own, returned when freed,
//! so a run's peak memory stays bounded as before.

/// Free memory at the top of a heap kept for reuse rather than returned to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 64 << 20;
/// Allocations from this size up are mapped on their own (glibc's dynamic threshold stops
/// adjusting once the trim threshold is set, so it is set too).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 4 << 20;

/// Sets the thresholds; called once, first thing in `main`, before any thread starts.
pub(crate) fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
