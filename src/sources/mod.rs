//! Intake adapters: each turns an outside format or API into checked `Mention`s and hands
//! them to `intake::ingest`. Files (JSON lines, CSV, a drop folder) and signed webhooks are here today.

pub mod files;
pub mod rss;
pub mod webhook;
