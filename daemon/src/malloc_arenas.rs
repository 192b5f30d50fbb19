//! glibc's allocator gives a thread that finds its arena locked by another a new arena, up
//! to eight per core, and each keeps a few MiB it has freed. The daemon's threads (pod
//! workers, API requests, the store's checkpoints) allocate side by side, so with 100 pods a
//! glibc build held 16 arenas and some 55 MiB of heap where one arena holds 22 MiB
//! (`a_hundred_pods_keep_the_daemon_small`). One arena, as musl's allocator has on the static
//! board builds (nothing to do there): the daemon's threads mostly wait, so they rarely meet
//! at the allocator.

/// How many arenas glibc may make.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: nix::libc::c_int = 1;

/// Caps glibc's arenas; call in `main` before any thread starts.
pub fn limit() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt(3) only sets an allocator parameter; no thread runs yet, and a value
    // glibc refuses leaves its default in place (the return value says so; nothing to undo).
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, ARENAS);
    }
}
