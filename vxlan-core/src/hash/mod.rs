//! Flow hashing (work in progress).
