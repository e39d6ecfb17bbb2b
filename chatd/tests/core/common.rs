//! Test helpers of the core tests: the workspace's test kit (a real server
//! on 127.0.0.1:0 with its data in a temp dir, clients that wait on events,
//! never on sleeps).

pub use chatd_testkit::*;
