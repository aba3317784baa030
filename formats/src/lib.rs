//! The psor snapshot file format (`.psnap`).
//!
//! This crate knows nothing of Redis connections, threads pools beyond rayon, terminals or
//! command lines: it turns records into bytes and back, and checks every byte it reads.
#![deny(missing_docs)]
