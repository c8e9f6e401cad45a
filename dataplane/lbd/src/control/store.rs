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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_loads_and_notices_edits() {
        let dir = std::env::temp_dir().join(format!("lbd-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = FileStore {
            path: dir.join("lbd.ron"),
        };
        assert_eq!(store.stamp(), None, "no file yet");
        let err = store.load().unwrap_err();
        assert!(err.contains("lbd.ron"), "{err}");
        let text = r#"(ports: [(name: "lan0", device: "net_null0", address: "198.18.0.2/24")])"#;
        store.save(text).unwrap();
        assert_eq!(store.load().unwrap().ports[0].name, "lan0");
        let saved = store.stamp().unwrap();
        // An edit by hand that changes the length changes the stamp.
        std::fs::write(&store.path, format!("{text}\n")).unwrap();
        assert_ne!(store.stamp().unwrap(), saved);
        assert_eq!(store.describe(), store.path.display().to_string());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
