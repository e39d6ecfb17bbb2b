//! Integration tests of the chatd core against a real server on loopback.

mod bad_input;
mod cli;
mod common;
mod pipeline;
mod races;
mod routing;
mod shutdown;
mod slow_consumer;
mod tls;
