//! Helpers shared by the integration tests: real SQLite files in a temporary directory.
#![allow(dead_code)]

use std::path::PathBuf;
use writeback_core::{AdValues, ManagedAttribute, Modification};
use writeback_state::SqliteStore;

pub struct TempStore {
    pub dir: tempfile::TempDir,
    pub store: SqliteStore,
}

impl TempStore {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
        TempStore { dir, store }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    /// A second, raw connection to the same file, for checking what is really stored.
    pub fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path()).unwrap()
    }
}

/// A distinct 16-byte GUID per number.
pub fn guid(n: u32) -> [u8; 16] {
    let mut g = [0xA5; 16];
    g[..4].copy_from_slice(&n.to_le_bytes());
    g
}

pub fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

pub fn ad_values(pairs: &[(ManagedAttribute, &[&str])]) -> AdValues {
    let mut out = AdValues::new();
    for (attr, values) in pairs {
        out.set(*attr, strings(values));
    }
    out
}

/// A mail change written the way the planner writes it: delete the old value, add the new.
pub fn change_mail(old: &str, new: &str) -> Vec<Modification> {
    vec![
        Modification::delete(ManagedAttribute::Mail, strings(&[old])),
        Modification::add(ManagedAttribute::Mail, strings(&[new])),
    ]
}
