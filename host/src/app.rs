//! The running PBX: [`start`] brings every part up, [`run`] keeps it up
//! until shutdown.

use crate::config::Config;
use crate::plugins::{Hook, Outcome, Policy, Runtime, Watcher};
use crate::sip::{Core, Flows, Listeners, Registrar, RegistrarConfig, TransportConfig};
use crate::store::{Extension, SqliteStore, Store};
use crate::tls::{CertStore, TlsAcceptor};
use anyhow::Context;
use arc_swap::ArcSwap;
use std::future::Future;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// A started PBX. Dropping it stops every task.
pub struct Running {
    /// The bound SIP listeners (with the ports picked for port 0).
    pub listeners: Listeners,
    /// The policy plugins.
    pub policy: Arc<Policy>,
    /// The SIP service.
    pub sip: Arc<Core>,
    /// The database.
    pub store: Arc<dyn Store>,
    _watcher: Watcher,
    tasks: Vec<JoinHandle<()>>,
    admin_socket: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = std::fs::remove_file(&self.admin_socket);
    }
}

impl Running {
    /// Stops serving and waits until every registration is in the
    /// database, so the next start finds the phones where they were.
    pub async fn shutdown(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        let sip = self.sip.clone();
        let synced = tokio::task::spawn_blocking(move || sip.registrar.sync()).await;
        if !matches!(synced, Ok(true)) {
            tracing::error!("the registration writer had stopped: the last registrations may be lost");
        }
    }
}

/// The acceptor of a SIP TLS listener: certificate per domain, and a phone's
/// optional client certificate verified against the client-CA bundle.
fn tls_acceptor(config: &Config, certs: &Arc<ArcSwap<CertStore>>, policy: &Arc<Policy>) -> anyhow::Result<TlsAcceptor> {
    let acceptor = TlsAcceptor::new("sip-tls", certs.clone(), policy.clone());
    if !config.client_ca.exists() {
        // Only the default can be missing (a configured one is checked when
        // the configuration is read): certificates installed by hand, no
        // development CA. Phones are then not asked for a certificate.
        tracing::warn!(
            "no {}: TLS client certificates are not asked for; set [tls] client_ca to recognise phones' certificates",
            config.client_ca.display()
        );
        return Ok(acceptor);
    }
    acceptor
        .with_client_ca(&config.client_ca)
        .with_context(|| format!("loading the client CA bundle {}", config.client_ca.display()))
}

/// Start the PBX described by `config`.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let certs = CertStore::load_or_init(&config.certs_dir, &config.domain).context("loading certificates")?;
    tracing::info!(domains = ?certs.domains().collect::<Vec<_>>(), "certificates loaded");
    let certs = Arc::new(ArcSwap::from_pointee(certs));

    let db_path = config.data_dir.join("pbx.db");
    let first_run = !db_path.exists();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db_path).context("opening the database")?);
    if first_run {
        first_extensions(store.as_ref(), &config.domain)?;
    }

    let runtime = Runtime::new(config.limits).context("starting the plugin runtime")?;
    let hooks = config.hooks.clone();
    let policy = Policy::new(runtime, |hook| {
        hooks[Hook::ALL.iter().position(|h| *h == hook).unwrap_or(0)].clone()
    });
    for event in policy.load_dir(&config.plugins_dir).await {
        if let Outcome::Refused(_) | Outcome::Unloaded = event.outcome {
            tracing::warn!(
                plugin = event.plugin,
                "hooks served by this plugin answer their fail-closed defaults"
            );
        }
    }
    let watcher = Watcher::spawn(policy.clone(), config.plugins_dir.clone())
        .with_context(|| format!("watching {}", config.plugins_dir.display()))?;

    let registrar = Registrar::new(
        store.clone(),
        RegistrarConfig {
            default_domain: config.domain.clone(),
            algorithms: config.digest.clone(),
            min_expires: config.min_expires,
            ..RegistrarConfig::default()
        },
    );
    let transport = TransportConfig::default();
    let calls = crate::calls::Calls::new(config.calls.clone()).context("starting the call service")?;
    let core = Core::new(registrar, transport, Arc::new(Flows::default()), calls, policy.clone());
    let limit = Arc::new(tokio::sync::Semaphore::new(transport.max_connections));
    let mut tasks = Vec::new();
    let mut listeners = Listeners::default();
    for addr in &config.listen.udp {
        let sock = tokio::net::UdpSocket::bind(addr)
            .await
            .with_context(|| format!("binding udp {addr}"))?;
        listeners.udp.push(sock.local_addr()?);
        let sock = Arc::new(sock);
        core.add_udp_socket(sock.clone());
        tasks.push(tokio::spawn(crate::sip::serve_udp(sock, core.clone())));
    }
    for (addrs, tls) in [(&config.listen.tcp, false), (&config.listen.tls, true)] {
        for addr in addrs {
            let proto = if tls { "tls" } else { "tcp" };
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {proto} {addr}"))?;
            let bound = l.local_addr()?;
            let acceptor = if tls {
                Some(Arc::new(tls_acceptor(&config, &certs, &policy)?))
            } else {
                None
            };
            if tls {
                listeners.tls.push(bound);
            } else {
                listeners.tcp.push(bound);
            }
            tasks.push(tokio::spawn(crate::sip::serve_stream(
                l,
                acceptor,
                core.clone(),
                limit.clone(),
            )));
        }
    }

    tasks.extend(crate::calls::Calls::start_trunk_registrations(&core));

    let sock = crate::admin::socket_path(&config.data_dir);
    let _ = std::fs::remove_file(&sock);
    let admin = tokio::net::UnixListener::bind(&sock).with_context(|| format!("binding {}", sock.display()))?;
    tasks.push(tokio::spawn(crate::admin::serve(admin, policy.clone())));
    tracing::info!(
        udp = ?listeners.udp,
        tcp = ?listeners.tcp,
        tls = ?listeners.tls,
        data = %config.data_dir.display(),
        "pbx running; `pbx plugins list` shows the plugins; Ctrl-C stops"
    );
    Ok(Running {
        listeners,
        policy,
        sip: core,
        store,
        _watcher: watcher,
        tasks,
        admin_socket: sock,
    })
}

/// Start the PBX and run until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let running = start(config).await?;
    shutdown.await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// On first run, two extensions with random passwords, shown once on the
/// console (standard output, never the log) so a newcomer can register two
/// phones and call.
fn first_extensions(store: &dyn Store, domain: &str) -> anyhow::Result<()> {
    println!("First run: created two extensions (the passwords are shown only now):");
    for ext in ["100", "101"] {
        let e = Extension {
            domain: domain.to_string(),
            extension: ext.to_string(),
            password: crate::store::random_password(),
            display_name: None,
            provisioned: false,
        };
        store
            .add_extension(&e)
            .with_context(|| format!("creating extension {ext}"))?;
        println!("  sip:{ext}@{domain}  password: {}", e.password);
    }
    println!("Add more with `pbx ext add {domain} 102`.");
    Ok(())
}
