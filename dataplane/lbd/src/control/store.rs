//! The configuration file as the control plane's [`ConfigStore`].

use std::path::PathBuf;

use lbcore::config::{self, Config};

use super::deps::{ConfigStore, Stamp};
use super::persist;

/// The file lbd was started with.
pub struct FileStore {
    pub path: PathBuf,
}

impl ConfigStore for FileStore {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> Result<Config, String> {
        config::load(&self.path).map_err(|e| e.to_string())
    }

    fn save(&mut self, text: &str) -> std::io::Result<()> {
        persist::write_atomic(&self.path, text)
    }

    fn stamp(&self) -> Option<Stamp> {
        let m = std::fs::metadata(&self.path).ok()?;
        Some((m.modified().ok()?, m.len()))
    }
}
