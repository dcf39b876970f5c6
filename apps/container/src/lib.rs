//! The Swift-compatible container service (SWIFT-BACKEND.md §6), on SQLite
//! databases in Swift's schema. Work in progress: the database layer.
#![forbid(unsafe_code)]

pub mod db;
pub mod listing;
