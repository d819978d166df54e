/// mimalloc, told never to purge: every convolution allocates an im2col buffer of up to
/// ~100 MB, and an allocator that hands freed pages back to the OS (glibc's mmap threshold,
/// mimalloc's default 10 ms purge delay) page-faults and zeroes them afresh on every layer,
/// a quarter of the extraction time in a profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the mimalloc headers vendored by libmimalloc-sys 0.1 (v2 and v3
/// enums: eager_commit_delay = 14, purge_delay, use_numa_nodes = 16); the binding omits it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // SAFETY: sets an allocator option before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    sslbench::cli::main()
}
