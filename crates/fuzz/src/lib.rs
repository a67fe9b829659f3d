//! Bounded-time fuzzing of Lectern's parsers on stable Rust.
//!
//! Each [`targets::Target`] is a function of raw bytes, shaped like a libFuzzer
//! target, that panics when a property fails: the parser must never panic,
//! must refuse input over its size limit, must hold no more heap than its
//! limits allow ([`alloc`] counts it), and where an encoder exists
//! `decode(encode(x)) == x`. [`runner`] replays the checked-in seed corpus
//! (`crates/fuzz/corpus/<target>/`) and found crashes
//! (`crates/fuzz/regressions/<target>/`), then mutates inputs ([`mutate`]) for a
//! fixed time. There is no coverage feedback (that needs a nightly or
//! instrumented build of every dependency); inputs a parser accepts are kept
//! and mutated further, which drives the search into valid message shapes.
//!
//! `cargo run -p lectern-fuzz -- --secs 10 agent_msg` fuzzes one target;
//! `cargo test -p lectern-fuzz` replays the corpus and regressions.

pub mod alloc;
pub mod mutate;
pub mod runner;
pub mod targets;
