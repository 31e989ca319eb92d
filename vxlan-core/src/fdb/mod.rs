//! The lock-free forwarding database (work in progress).
