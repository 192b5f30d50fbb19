//! coracle: kubectl verbs against coracled.

fn main() {
    std::process::exit(coracle::entry::main())
}
