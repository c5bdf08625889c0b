//! Integration tests: the real server over HTTP against a real MariaDB, one database per test.
//! Run with `scripts/test`, which starts the private MariaDB and sets ENCORE_TEST_DATABASE_URL.

// The whole crate is test code: a failed setup step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod abuse;
mod accounts;
mod apollo;
mod bench_smoke;
mod browser;
mod catalog;
mod challenge;
mod concurrency;
mod controls;
mod eta;
mod fuzz;
mod holds;
mod hostile;
mod http_audit;
mod live;
mod operator;
mod orders;
mod payment;
mod process;
mod queue;
mod refund;
mod resilience;
mod restart;
mod sale;
mod service;
mod sold_out;
mod waitlist;
mod wallet;
mod ws_protocol;
