//! The extension's releases as `extension/sql/` holds them: the frozen
//! install scripts of earlier releases (`lamin--X.sql`), the upgrade scripts
//! (`lamin--A--B.sql`) and `released.sha256`, the hashes of every released
//! file (released files are never edited).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The current release: the workspace version, which pgrx installs as
/// `lamin--{CURRENT}.sql`.
pub const CURRENT: &str = env!("CARGO_PKG_VERSION");

pub struct Releases {
    pub dir: PathBuf,
    /// Versions with a frozen install script, oldest first.
    pub frozen: Vec<String>,
    /// Upgrade steps: from → to.
    pub steps: BTreeMap<String, String>,
    /// File name → sha256 from released.sha256.
    pub released: BTreeMap<String, String>,
}

/// Order release versions by their numbers (0.10.0 after 0.9.0).
pub fn version_order(a: &str, b: &str) -> Ordering {
    lamin_core::compat::compare(a, b).unwrap_or_else(|| a.cmp(b))
}

impl Releases {
    pub fn load() -> Releases {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../extension/sql");
        let mut frozen = Vec::new();
        let mut steps = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).expect("read extension/sql") {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let Some(stem) = name
                .strip_prefix("lamin--")
                .and_then(|s| s.strip_suffix(".sql"))
            else {
                continue;
            };
            match stem.split_once("--") {
                Some((from, to)) => {
                    let earlier = steps.insert(from.to_string(), to.to_string());
                    assert!(
                        earlier.is_none(),
                        "two upgrade scripts start at {from}: one step per release"
                    );
                }
                None => frozen.push(stem.to_string()),
            }
        }
        frozen.sort_by(|a, b| version_order(a, b));
        let manifest = std::fs::read_to_string(dir.join("released.sha256"))
            .expect("read extension/sql/released.sha256");
        let released = manifest
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (hash, file) = l
                    .split_once("  ")
                    .unwrap_or_else(|| panic!("released.sha256: {l:?} is not `sha256  file`"));
                (file.to_string(), hash.to_string())
            })
            .collect();
        Releases {
            dir,
            frozen,
            steps,
            released,
        }
    }

    /// The oldest release: where every upgrade walk starts.
    pub fn oldest(&self) -> &str {
        self.frozen
            .first()
            .expect("extension/sql holds the frozen install script of the first release")
    }

    /// The versions an upgrade from `from` passes through to CURRENT, in order
    /// (`from` left out); panics naming the missing script.
    pub fn walk_from(&self, from: &str) -> Vec<String> {
        let mut at = from.to_string();
        let mut path = Vec::new();
        while at != CURRENT {
            let next = self.steps.get(&at).unwrap_or_else(|| {
                panic!(
                    "no upgrade script from {at}: add extension/sql/lamin--{at}--{CURRENT}.sql (every release needs its step)"
                )
            });
            assert!(
                version_order(next, &at) == Ordering::Greater,
                "lamin--{at}--{next}.sql goes backwards"
            );
            path.push(next.clone());
            at = next.clone();
        }
        path
    }
}
