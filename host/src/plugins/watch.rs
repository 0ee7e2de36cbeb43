//! Hot reload: watch the plugins folder and reload a plugin when its
//! `.wasm` or `.json` changes, appears or disappears.
//!
//! The folder (not the files) is watched, so deploying by writing a
//! temporary file and renaming it over the plugin works (a rename replaces
//! the inode, which a file watch would lose). Events are debounced: a
//! reload starts once the folder has been quiet for [`DEBOUNCE`], so an
//! in-place rewrite is normally read whole. If a half-written file is read
//! anyway, it is refused (the previous version keeps serving) and the
//! write's later events reload it again.

use super::Policy;
use notify::{EventKind, RecursiveMode, Watcher as _};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Quiet time before a changed plugin is reloaded.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// A running folder watch; dropping it stops watching.
pub struct Watcher {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watcher {
    /// Watch `dir` and reload `policy`'s plugins on change. Must be called
    /// inside a tokio runtime.
    pub fn spawn(policy: Arc<Policy>, dir: PathBuf) -> notify::Result<Watcher> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let _ = tx.send(res);
        })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        let task = tokio::spawn(async move {
            let names = policy.plugin_names();
            loop {
                let mut changed = BTreeSet::new();
                // Wait for the first relevant event, then keep collecting
                // until the folder is quiet.
                let Some(first) = rx.recv().await else { return };
                collect(&names, first, &mut changed);
                loop {
                    match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                        Ok(Some(ev)) => collect(&names, ev, &mut changed),
                        Ok(None) => return,
                        Err(_quiet) => break,
                    }
                }
                for name in changed {
                    policy.reload_from(&dir, &name).await;
                }
            }
        });
        Ok(Watcher {
            _watcher: watcher,
            task,
        })
    }
}

/// Add to `changed` the configured plugins an event touches.
fn collect(names: &BTreeSet<String>, event: notify::Result<notify::Event>, changed: &mut BTreeSet<String>) {
    let event = match event {
        Ok(ev) => ev,
        Err(e) => {
            // The watch may have missed events (e.g. queue overflow):
            // reload everything to be sure.
            tracing::warn!("plugin folder watch error, reloading all plugins: {e}");
            changed.extend(names.iter().cloned());
            return;
        }
    };
    if matches!(
        event.kind,
        EventKind::Access(notify::event::AccessKind::Open(_)) | EventKind::Access(notify::event::AccessKind::Read)
    ) {
        return;
    }
    for path in &event.paths {
        if let Some(name) = plugin_name(path)
            && names.contains(name)
        {
            changed.insert(name.to_string());
        }
    }
}

/// `routing` for `…/routing.wasm` or `…/routing.json`.
fn plugin_name(path: &Path) -> Option<&str> {
    let ext = path.extension()?.to_str()?;
    if ext != "wasm" && ext != "json" {
        return None;
    }
    path.file_stem()?.to_str()
}
