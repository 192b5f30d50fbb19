//! coracle: kubectl verbs against coracled.
