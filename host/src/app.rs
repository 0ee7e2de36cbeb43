//! The running PBX: [`run`] starts every part and stops on `shutdown`.

use crate::config::Config;
use crate::plugins::{Outcome, Policy, Runtime, Watcher};
use crate::tls::CertStore;
use anyhow::Context;
use std::future::Future;

/// Start the PBX described by `config` and run until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let certs = CertStore::load_or_init(&config.certs_dir, &config.domain).context("loading certificates")?;
    tracing::info!(domains = ?certs.domains().collect::<Vec<_>>(), "certificates loaded");
    let runtime = Runtime::new(config.limits).context("starting the plugin runtime")?;
    let hooks = config.hooks.clone();
    let policy = Policy::new(runtime, |hook| {
        hooks[crate::plugins::Hook::ALL
            .iter()
            .position(|h| *h == hook)
            .unwrap_or(0)]
        .clone()
    });
    for event in policy.load_dir(&config.plugins_dir).await {
        if let Outcome::Refused(_) | Outcome::Unloaded = event.outcome {
            tracing::warn!(
                plugin = event.plugin,
                "hooks served by this plugin answer their fail-closed defaults"
            );
        }
    }
    let _watcher = Watcher::spawn(policy.clone(), config.plugins_dir.clone())
        .with_context(|| format!("watching {}", config.plugins_dir.display()))?;

    let sock = crate::admin::socket_path(&config.data_dir);
    let _ = std::fs::remove_file(&sock);
    let listener = tokio::net::UnixListener::bind(&sock)
        .with_context(|| format!("binding {}", sock.display()))?;
    let admin = tokio::spawn(crate::admin::serve(listener, policy.clone()));

    tracing::info!(
        data = %config.data_dir.display(),
        plugins = %config.plugins_dir.display(),
        "pbx running; `pbx plugins list` shows the plugins; Ctrl-C stops"
    );
    shutdown.await;
    tracing::info!("shutting down");
    admin.abort();
    let _ = std::fs::remove_file(&sock);
    Ok(())
}
