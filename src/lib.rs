//! carebot: turns public mentions of a hospital into tracked cases for social-care and
//! patient-experience teams. See README.md for what it does and how to run it.

pub mod app;
pub mod chat;
pub mod clock;
pub mod config;
pub mod ctx;
pub mod digest;
pub mod domain;
pub mod drafting;
pub mod errors;
pub mod http;
pub mod intake;
pub mod jobs;
pub mod ops;
pub mod playbook;
pub mod present;
pub mod publish;
pub mod registry;
pub mod sources;
pub mod store;
pub mod workflow;

pub use app::App;
pub use config::Settings;
pub use ctx::Ctx;
