//! A mesh of instances: each database with the extension is one instance.
//! `instances` makes new ones (from a template database, in seconds), lists
//! them and finds them by name; `transfer` copies records between two of
//! them, each side as the caller's own role.

pub mod instances;
pub mod transfer;
