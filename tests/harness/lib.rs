//! Test harness: start coracled on a temp dir, run coracle, build busybox images.
