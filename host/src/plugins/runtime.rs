//! The wasmtime side: one `Engine` and `Linker` per process, compiling
//! plugins into [`Plugin`]s and running each call under its limits.
//!
//! Every call runs in a warm instance taken from the plugin's own pool (a
//! reused instance answers in a few microseconds; a fresh one costs tens).
//! A trap poisons an instance, so it is dropped, never reused; instances are
//! also retired after [`Limits::recycle_after`] calls to bound guest heap
//! growth and cross-call state.

use super::bindings::{self, certificates, meta, provisioning, routing, security, trunk_exceptions};
use super::compat;
use super::state::{LOG_LINES_PER_CALL, State};
use super::{CallError, Hook, LoadError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use wasmtime::component::{Component, HasSelf, Instance, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimitsBuilder, Trap};

/// The version of `pbx:policy` in `wit/policy.wit`, which plugins built
/// with the SDK export.
pub const CURRENT_CONTRACT: &str = "0.2.0";

/// How often the epoch advances. Deadlines are counted in these ticks.
const TICK: Duration = Duration::from_millis(1);

/// Limits that bound every plugin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget of one call. Runaway guard, not a CPU budget: a
    /// busy machine preempts threads, so keep it generous (default 100 ms).
    pub deadline: Duration,
    /// Linear memory one instance may grow to (default 32 MiB).
    pub memory_bytes: usize,
    /// Optional deterministic CPU budget per call, in wasmtime fuel units.
    /// Costs about 10–20 % per call; off by default.
    pub fuel: Option<u64>,
    /// Largest `.wasm` file accepted (default 16 MiB).
    pub max_module_bytes: usize,
    /// Calls after which a warm instance is retired (default 10 000).
    pub recycle_after: u64,
    /// Warm instances kept per plugin (default 16).
    pub warm_instances: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_millis(100),
            memory_bytes: 32 << 20,
            fuel: None,
            max_module_bytes: 16 << 20,
            recycle_after: 10_000,
            warm_instances: 16,
        }
    }
}

/// The process-wide WebAssembly runtime.
pub struct Runtime {
    engine: Engine,
    linker: Linker<State>,
    limits: Limits,
    generation: AtomicU64,
    /// Compiled components by SHA-256 of their bytes, so that reloading a
    /// version seen before (a rollback, a configuration-only change, a
    /// restart of the watcher) skips the compiler.
    compiled: Mutex<HashMap<String, Component>>,
}

/// Compiled components kept for reuse.
const COMPILED_CACHE: usize = 32;

impl Runtime {
    /// Build the engine (epoch interruption, pooling allocator sized for
    /// `limits`), link the host functions and start the epoch ticker.
    pub fn new(limits: Limits) -> Result<Arc<Self>, LoadError> {
        let mut cfg = Config::new();
        cfg.epoch_interruption(true);
        cfg.consume_fuel(limits.fuel.is_some());
        // A plugin's memory lives in a fixed 64 MiB reservation (above the
        // 32 MiB default cap), not the default 4 GiB, so the pool below
        // reserves about 128 GiB of address space rather than 8 TiB.
        let reservation = (limits.memory_bytes as u64).next_power_of_two().max(64 << 20);
        cfg.memory_reservation(reservation);
        cfg.memory_guard_size(64 << 10);
        let mut pool = PoolingAllocationConfig::default();
        // A Rust wasip2 component holds a few core instances and tables
        // (its module plus adapter shims) but one memory.
        pool.total_component_instances(1000)
            .total_core_instances(8000)
            .total_memories(2000)
            .total_tables(8000)
            .total_stacks(1000)
            .max_memory_size(limits.memory_bytes);
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&cfg).map_err(|e| LoadError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        bindings::Plugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        // The host functions of the previous contract, for plugins built
        // against `pbx:policy@0.1.0` (0.x versions do not semver-match, so
        // both are linked side by side).
        compat::v0_1::Plugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;

        spawn_ticker(&engine);
        Ok(Arc::new(Runtime {
            engine,
            linker,
            limits,
            generation: AtomicU64::new(1),
            compiled: Mutex::new(HashMap::new()),
        }))
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Compile `wasm` and resolve its imports and exports. CPU-heavy (tens
    /// of milliseconds): run it off the request path. Does not call the
    /// plugin; see [`Plugin::self_test`].
    pub fn compile(&self, name: &str, wasm: &[u8], config: &str) -> Result<Plugin, LoadError> {
        if wasm.len() > self.limits.max_module_bytes {
            return Err(LoadError::TooLarge(wasm.len(), self.limits.max_module_bytes));
        }
        if !wasm.starts_with(b"\0asm") {
            return Err(LoadError::NotWasm);
        }
        serde_json::from_str::<serde::de::IgnoredAny>(config).map_err(|e| LoadError::Config(e.to_string()))?;
        let sha256 = super::sha256_hex(wasm);
        let cached = self
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&sha256)
            .cloned();
        let component = match cached {
            Some(c) => c,
            None => {
                let c = Component::from_binary(&self.engine, wasm).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
                let mut cache = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= COMPILED_CACHE {
                    cache.clear();
                }
                cache.insert(sha256.clone(), c.clone());
                c
            }
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Imports(format!("{e:#}")))?;
        // The contract version is the one whose `meta` the component
        // exports: the current one first, then `0.1.0`.
        let exports = match meta::GuestIndices::new(&pre) {
            Ok(meta) => Exports::Current(CurrentExports {
                meta,
                routing: routing::GuestIndices::new(&pre).ok(),
                security: security::GuestIndices::new(&pre).ok(),
                trunk_exceptions: trunk_exceptions::GuestIndices::new(&pre).ok(),
                certificates: certificates::GuestIndices::new(&pre).ok(),
                provisioning: provisioning::GuestIndices::new(&pre).ok(),
            }),
            Err(e) => match compat::Exports::of(&pre) {
                Some(old) => Exports::V0_1(old),
                None => return Err(LoadError::WrongWorld(format!("{e:#}"))),
            },
        };
        Ok(Plugin {
            name: Arc::from(name),
            sha256,
            config: Arc::from(config),
            size: wasm.len(),
            loaded_at: SystemTime::now(),
            generation: self.generation.fetch_add(1, Ordering::Relaxed),
            info: PluginInfo::default(),
            pre,
            exports,
            limits: self.limits,
            warm: Mutex::new(Vec::new()),
        })
    }
}

/// Advance the engine's epoch every [`TICK`] until the engine is dropped.
fn spawn_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new().name("plugin-epoch".into()).spawn(move || {
        while let Some(engine) = weak.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(TICK);
        }
    });
    if let Err(e) = spawned {
        // Without a ticker no deadline fires; every call would still be
        // bounded by fuel if configured. Say so loudly.
        tracing::error!("cannot start the plugin epoch ticker: {e}");
    }
}

/// Which hook interfaces a component exports, and against which version of
/// the contract it was built.
enum Exports {
    /// `pbx:policy@0.2.0`.
    Current(CurrentExports),
    /// `pbx:policy@0.1.0`: values are converted at the boundary.
    V0_1(compat::Exports),
}

/// The `pbx:policy@0.2.0` hook interfaces a component exports.
struct CurrentExports {
    meta: meta::GuestIndices,
    routing: Option<routing::GuestIndices>,
    security: Option<security::GuestIndices>,
    trunk_exceptions: Option<trunk_exceptions::GuestIndices>,
    certificates: Option<certificates::GuestIndices>,
    provisioning: Option<provisioning::GuestIndices>,
}

/// What a plugin says about itself (`meta.info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PluginInfo {
    /// The plugin's own name.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// The hooks it serves.
    pub hooks: Vec<Hook>,
}

/// One loaded version of one plugin file, ready to serve calls.
pub struct Plugin {
    /// The plugin's file name without `.wasm` (how the config refers to it).
    pub name: Arc<str>,
    /// SHA-256 of the `.wasm` file, hex.
    pub sha256: String,
    /// The JSON configuration it was loaded with.
    pub config: Arc<str>,
    /// Size of the `.wasm` file in bytes.
    pub size: usize,
    /// When this version was compiled.
    pub loaded_at: SystemTime,
    /// Increases with every load in this process.
    pub generation: u64,
    /// What the plugin said about itself at its self-test.
    pub info: PluginInfo,
    pre: InstancePre<State>,
    exports: Exports,
    limits: Limits,
    warm: Mutex<Vec<Warm>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("info", &self.info)
            .field("sha256", &self.sha256)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// A ready instance and its store.
struct Warm {
    store: Store<State>,
    instance: Instance,
    calls: u64,
    guests: Guests,
}

/// The typed exports of one instance, looked up (and type-checked) on first
/// use only: checking a record-heavy signature costs more than the call.
#[derive(Default)]
struct Guests {
    meta: Option<meta::Guest>,
    routing: Option<routing::Guest>,
    security: Option<security::Guest>,
    trunk_exceptions: Option<trunk_exceptions::Guest>,
    certificates: Option<certificates::Guest>,
    provisioning: Option<provisioning::Guest>,
    /// The same for a `0.1.0` plugin.
    v0_1: compat::Guests,
}

/// The `$field` export of a warm instance, from its cache or looked up once.
macro_rules! guest {
    ($warm:expr, $($field:ident).+, $idx:expr) => {{
        let warm: &mut Warm = $warm;
        match &warm.guests.$($field).+ {
            Some(g) => g.clone(),
            None => {
                let g = $idx.load(&mut warm.store, &warm.instance)?;
                warm.guests.$($field).+ = Some(g.clone());
                g
            }
        }
    }};
}

impl Plugin {
    /// Does the component export this hook's interface?
    pub fn exports_hook(&self, hook: Hook) -> bool {
        match &self.exports {
            Exports::Current(e) => match hook {
                Hook::Routing => e.routing.is_some(),
                Hook::Security => e.security.is_some(),
                Hook::TrunkExceptions => e.trunk_exceptions.is_some(),
                Hook::Certificates => e.certificates.is_some(),
                Hook::Provisioning => e.provisioning.is_some(),
            },
            Exports::V0_1(e) => match hook {
                Hook::Routing => e.routing.is_some(),
                Hook::Security => e.security.is_some(),
                Hook::TrunkExceptions => e.trunk_exceptions.is_some(),
                Hook::Certificates => e.certificates.is_some(),
                Hook::Provisioning => e.provisioning.is_some(),
            },
        }
    }

    /// The version of the `pbx:policy` contract the plugin was built
    /// against (`0.2.0`, or `0.1.0` for an older plugin).
    pub fn contract_version(&self) -> &'static str {
        match self.exports {
            Exports::Current(_) => CURRENT_CONTRACT,
            Exports::V0_1(_) => "0.1.0",
        }
    }

    /// Ask the plugin what it is; fills [`Plugin::info`].
    pub(crate) async fn describe(&mut self) -> Result<(), CallError> {
        let info = match &self.exports {
            Exports::Current(e) => {
                let idx = e.meta.clone();
                self.invoke(async |w| guest!(w, meta, idx).call_info(&mut w.store).await)
                    .await?
            }
            Exports::V0_1(e) => {
                let idx = e.meta.clone();
                self.invoke(async |w| guest!(w, v0_1.meta, idx).call_info(&mut w.store).await)
                    .await
                    .map(compat::info)?
            }
        };
        if info.name.len() > 128 || info.version.len() > 64 {
            return Err(CallError::Malformed("meta.info: name or version too long".into()));
        }
        self.info = PluginInfo {
            name: info.name,
            version: info.version,
            hooks: info.hooks.into_iter().map(Hook::from).collect(),
        };
        Ok(())
    }

    pub(crate) async fn route(&self, call: &bindings::types::Call) -> Result<routing::Decision, CallError> {
        let missing = CallError::NotExported(Hook::Routing);
        match &self.exports {
            Exports::Current(e) => {
                let idx = e.routing.as_ref().ok_or(missing)?;
                self.invoke(async |w| guest!(w, routing, idx).call_route(&mut w.store, call).await)
                    .await
            }
            Exports::V0_1(e) => {
                let idx = e.routing.as_ref().ok_or(missing)?;
                let call = compat::call(call);
                self.invoke(async |w| guest!(w, v0_1.routing, idx).call_route(&mut w.store, &call).await)
                    .await
                    .map(compat::route)
            }
        }
    }

    pub(crate) async fn check(
        &self,
        call: &bindings::types::Call,
        leg: &security::Leg,
    ) -> Result<security::Verdict, CallError> {
        let missing = CallError::NotExported(Hook::Security);
        match &self.exports {
            Exports::Current(e) => {
                let idx = e.security.as_ref().ok_or(missing)?;
                self.invoke(async |w| guest!(w, security, idx).call_check(&mut w.store, call, leg).await)
                    .await
            }
            Exports::V0_1(e) => {
                let idx = e.security.as_ref().ok_or(missing)?;
                let (call, leg) = (compat::call(call), compat::leg(leg));
                self.invoke(async |w| {
                    guest!(w, v0_1.security, idx)
                        .call_check(&mut w.store, &call, &leg)
                        .await
                })
                .await
                .map(compat::verdict)
            }
        }
    }

    pub(crate) async fn is_exempt(&self, trunk: &str) -> Result<bool, CallError> {
        let missing = CallError::NotExported(Hook::TrunkExceptions);
        match &self.exports {
            Exports::Current(e) => {
                let idx = e.trunk_exceptions.as_ref().ok_or(missing)?;
                self.invoke(async |w| {
                    guest!(w, trunk_exceptions, idx)
                        .call_is_exempt(&mut w.store, trunk)
                        .await
                })
                .await
            }
            Exports::V0_1(e) => {
                let idx = e.trunk_exceptions.as_ref().ok_or(missing)?;
                self.invoke(async |w| {
                    guest!(w, v0_1.trunk_exceptions, idx)
                        .call_is_exempt(&mut w.store, trunk)
                        .await
                })
                .await
            }
        }
    }

    pub(crate) async fn select(&self, hello: &certificates::Hello) -> Result<Option<String>, CallError> {
        let missing = CallError::NotExported(Hook::Certificates);
        match &self.exports {
            Exports::Current(e) => {
                let idx = e.certificates.as_ref().ok_or(missing)?;
                self.invoke(async |w| guest!(w, certificates, idx).call_select(&mut w.store, hello).await)
                    .await
            }
            Exports::V0_1(e) => {
                let idx = e.certificates.as_ref().ok_or(missing)?;
                let hello = compat::hello(hello);
                self.invoke(async |w| {
                    guest!(w, v0_1.certificates, idx)
                        .call_select(&mut w.store, &hello)
                        .await
                })
                .await
            }
        }
    }

    pub(crate) async fn password(&self, request: &provisioning::Request) -> Result<provisioning::Decision, CallError> {
        let missing = CallError::NotExported(Hook::Provisioning);
        match &self.exports {
            Exports::Current(e) => {
                let idx = e.provisioning.as_ref().ok_or(missing)?;
                self.invoke(async |w| guest!(w, provisioning, idx).call_password(&mut w.store, request).await)
                    .await
            }
            Exports::V0_1(e) => {
                let idx = e.provisioning.as_ref().ok_or(missing)?;
                let request = compat::request(request);
                self.invoke(async |w| {
                    guest!(w, v0_1.provisioning, idx)
                        .call_password(&mut w.store, &request)
                        .await
                })
                .await
                .map(compat::password)
            }
        }
    }

    /// Run `f` on a warm instance under the call limits. The instance goes
    /// back to the pool only if the call succeeded.
    async fn invoke<R>(&self, f: impl AsyncFnOnce(&mut Warm) -> wasmtime::Result<R>) -> Result<R, CallError> {
        let mut warm = match self.checkout() {
            Some(w) => w,
            None => self.instantiate().await?,
        };
        let ticks = (self.limits.deadline.as_millis() / TICK.as_millis()).max(1) as u64;
        warm.store.set_epoch_deadline(ticks);
        if let Some(fuel) = self.limits.fuel {
            warm.store
                .set_fuel(fuel)
                .map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
        }
        warm.store.data_mut().log_budget = LOG_LINES_PER_CALL;
        let result = f(&mut warm).await;
        warm.calls += 1;
        match result {
            Ok(r) => {
                self.checkin(warm);
                Ok(r)
            }
            Err(e) => Err(classify(e)),
        }
    }

    fn checkout(&self) -> Option<Warm> {
        self.warm.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn checkin(&self, warm: Warm) {
        if warm.calls >= self.limits.recycle_after {
            return;
        }
        let mut pool = self.warm.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < self.limits.warm_instances {
            pool.push(warm);
        }
    }

    async fn instantiate(&self) -> Result<Warm, CallError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .instances(16)
            .tables(32)
            .memories(4)
            .trap_on_grow_failure(true)
            .build();
        let state = State::new(self.name.clone(), self.config.clone(), limits);
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        // Start-up code (the guest's allocator, statics) runs during
        // instantiation: bound it like a call.
        let ticks = (self.limits.deadline.as_millis() / TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        if let Some(fuel) = self.limits.fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
        }
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| match classify(e) {
                CallError::Trap(m) => CallError::Instantiate(m),
                other => other,
            })?;
        Ok(Warm {
            store,
            instance,
            calls: 0,
            guests: Guests::default(),
        })
    }

    /// Instantiate up to `n` instances ahead of the first calls (the first
    /// call in a fresh instance costs tens of microseconds more than later
    /// ones). Stops at the pool size.
    pub async fn prewarm(&self, n: usize) -> Result<(), CallError> {
        let n = n.min(self.limits.warm_instances);
        let mut fresh = Vec::with_capacity(n);
        for _ in 0..n.saturating_sub(self.warm_instances()) {
            fresh.push(self.instantiate().await?);
        }
        for w in fresh {
            self.checkin(w);
        }
        Ok(())
    }

    /// Warm instances currently pooled (for tests and status).
    pub fn warm_instances(&self) -> usize {
        self.warm.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Turn a wasmtime error into a [`CallError`] an admin can act on.
fn classify(e: wasmtime::Error) -> CallError {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::Deadline,
        Some(Trap::OutOfFuel) => CallError::OutOfFuel,
        Some(Trap::StackOverflow) => CallError::Trap("stack overflow".into()),
        _ => {
            let msg = format!("{e:#}");
            if msg.contains("forcing trap when growing memory") {
                CallError::MemoryLimit
            } else if msg.contains("resource limit exceeded") || msg.contains("pooling") {
                CallError::Instantiate(msg)
            } else {
                CallError::Trap(first_line(&msg))
            }
        }
    }
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    line.chars().take(300).collect()
}

impl From<meta::Hook> for Hook {
    fn from(h: meta::Hook) -> Self {
        match h {
            meta::Hook::Routing => Hook::Routing,
            meta::Hook::Security => Hook::Security,
            meta::Hook::TrunkExceptions => Hook::TrunkExceptions,
            meta::Hook::Certificates => Hook::Certificates,
            meta::Hook::Provisioning => Hook::Provisioning,
        }
    }
}
