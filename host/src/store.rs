//! The PBX's embedded database: extensions and registrations.
//!
//! [`Store`] is the small interface the rest of the PBX uses, so that a
//! PostgreSQL backend for several nodes can implement it later;
//! [`SqliteStore`] is the embedded default (`data/pbx.db`).
//!
//! Passwords are stored as given (SIP digest needs the password or its
//! per-realm HA1); the file is created readable by its owner only, and no
//! password is ever logged or printed by `Debug`.

use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reported an error.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The extension already exists.
    #[error("extension {0}@{1} already exists")]
    Exists(String, String),
    /// No such extension.
    #[error("no extension {0}@{1}")]
    NotFound(String, String),
    /// A value is not acceptable (e.g. an empty extension).
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// An extension (a phone account) of a domain.
#[derive(Clone, PartialEq, Eq)]
pub struct Extension {
    /// The domain, lower-case.
    pub domain: String,
    /// The extension (SIP user), e.g. `100`.
    pub extension: String,
    /// The SIP digest password.
    pub password: String,
    /// The display name, if any.
    pub display_name: Option<String>,
    /// Whether its password was provisioned (the "once" policy's flag).
    pub provisioned: bool,
}

impl std::fmt::Debug for Extension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extension")
            .field("domain", &self.domain)
            .field("extension", &self.extension)
            .field("password", &"<redacted>")
            .field("display_name", &self.display_name)
            .field("provisioned", &self.provisioned)
            .finish()
    }
}

/// A registered contact of an extension (it survives a restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The extension's domain.
    pub domain: String,
    /// The extension.
    pub extension: String,
    /// The Contact URI.
    pub contact: String,
    /// RFC 5626 `+sip.instance`, if the phone sent one.
    pub instance: Option<String>,
    /// RFC 5626 `reg-id`, if the phone sent one.
    pub reg_id: Option<u32>,
    /// Where the REGISTER came from: `tls:1.2.3.4:5061`.
    pub source: String,
    /// Expiry, seconds since the UNIX epoch.
    pub expires_at: u64,
    /// Call-ID and CSeq of the REGISTER that made it (RFC 3261 §10.3).
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
}

/// The new bindings of one address-of-record, for [`Store::save_bindings`].
#[derive(Debug, Clone, Copy)]
pub struct BindingChange<'a> {
    /// The domain of the address-of-record.
    pub domain: &'a str,
    /// Its extension.
    pub extension: &'a str,
    /// Its bindings from now on (none: unregistered).
    pub bindings: &'a [Binding],
}

/// The storage interface of the PBX.
pub trait Store: Send + Sync {
    /// Look up an extension.
    fn extension(&self, domain: &str, extension: &str) -> Result<Option<Extension>, StoreError>;
    /// Add an extension.
    fn add_extension(&self, e: &Extension) -> Result<(), StoreError>;
    /// All extensions, optionally of one domain.
    fn extensions(&self, domain: Option<&str>) -> Result<Vec<Extension>, StoreError>;
    /// Change an extension's password.
    fn set_password(&self, domain: &str, extension: &str, password: &str) -> Result<(), StoreError>;
    /// Set or reset an extension's "provisioned" flag.
    fn set_provisioned(&self, domain: &str, extension: &str, provisioned: bool) -> Result<(), StoreError>;
    /// Replace the bindings of `domain`/`extension` with `bindings`.
    fn replace_bindings(&self, domain: &str, extension: &str, bindings: &[Binding]) -> Result<(), StoreError> {
        self.save_bindings(&[BindingChange {
            domain,
            extension,
            bindings,
        }])
    }
    /// Apply several replacements at once, all or none (one transaction:
    /// the registrar's writer coalesces bursts of registrations this way).
    fn save_bindings(&self, changes: &[BindingChange<'_>]) -> Result<(), StoreError>;
    /// Every stored binding not expired at `now` (UNIX seconds).
    fn bindings(&self, now: u64) -> Result<Vec<Binding>, StoreError>;
}

/// The embedded SQLite store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Extensions already looked up, valid while the database's
    /// `data_version` stays the same (it changes when another connection,
    /// such as the `pbx ext` CLI, commits; it is read at most every
    /// [`VERSION_CHECK`]) and cleared by this store's own writes: every
    /// REGISTER and INVITE looks up its extension, and a query, even of
    /// the version, costs a read transaction.
    cache: Mutex<ExtensionCache>,
}

#[derive(Default)]
struct ExtensionCache {
    version: i64,
    checked: Option<std::time::Instant>,
    found: std::collections::HashMap<(String, String), Option<Extension>>,
}

/// How long a change made by another process (the CLI) may take to be
/// seen: the database's version is read at most this often.
pub const VERSION_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// Entries kept before the cache starts over (lookups of random names
/// must not grow it without bound).
const CACHE_MAX: usize = 50_000;

impl SqliteStore {
    /// Open (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let new = !path.exists();
        let conn = Connection::open(path)?;
        if new {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
            }
        }
        Self::init(conn)
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS extensions (
                 domain TEXT NOT NULL,
                 extension TEXT NOT NULL,
                 password TEXT NOT NULL,
                 display_name TEXT,
                 provisioned INTEGER NOT NULL DEFAULT 0,
                 PRIMARY KEY (domain, extension)
             );
             CREATE TABLE IF NOT EXISTS bindings (
                 domain TEXT NOT NULL,
                 extension TEXT NOT NULL,
                 contact TEXT NOT NULL,
                 instance TEXT,
                 reg_id INTEGER,
                 source TEXT NOT NULL,
                 expires_at INTEGER NOT NULL,
                 call_id TEXT NOT NULL,
                 cseq INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS bindings_aor ON bindings (domain, extension);",
        )?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            cache: Mutex::default(),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, ExtensionCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forget cached extensions (after this store changed them).
    fn changed(&self) {
        self.cache().found.clear();
    }
}

fn row_to_extension(row: &rusqlite::Row<'_>) -> rusqlite::Result<Extension> {
    Ok(Extension {
        domain: row.get(0)?,
        extension: row.get(1)?,
        password: row.get(2)?,
        display_name: row.get(3)?,
        provisioned: row.get::<_, i64>(4)? != 0,
    })
}

impl Store for SqliteStore {
    fn extension(&self, domain: &str, extension: &str) -> Result<Option<Extension>, StoreError> {
        let conn = self.conn();
        let key = (domain.to_ascii_lowercase(), extension.to_string());
        {
            let mut cache = self.cache();
            let now = std::time::Instant::now();
            if cache.checked.is_none_or(|at| now.duration_since(at) >= VERSION_CHECK) {
                let version: i64 = conn
                    .prepare_cached("PRAGMA data_version")?
                    .query_row([], |r| r.get(0))?;
                if cache.version != version {
                    cache.version = version;
                    cache.found.clear();
                }
                cache.checked = Some(now);
            }
            if let Some(found) = cache.found.get(&key) {
                return Ok(found.clone());
            }
        }
        let mut stmt = conn.prepare_cached(
            "SELECT domain, extension, password, display_name, provisioned FROM extensions
             WHERE domain = ?1 AND extension = ?2",
        )?;
        let found = stmt.query_row(params![key.0, key.1], row_to_extension).optional()?;
        let mut cache = self.cache();
        if cache.found.len() >= CACHE_MAX {
            cache.found.clear();
        }
        cache.found.insert(key, found.clone());
        Ok(found)
    }

    fn add_extension(&self, e: &Extension) -> Result<(), StoreError> {
        if e.extension.is_empty() || e.extension.len() > 64 {
            return Err(StoreError::Invalid("extension"));
        }
        if e.password.is_empty() {
            return Err(StoreError::Invalid("password"));
        }
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO extensions (domain, extension, password, display_name, provisioned)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                e.domain.to_ascii_lowercase(),
                e.extension,
                e.password,
                e.display_name,
                e.provisioned as i64
            ],
        )?;
        self.changed();
        if n == 0 {
            return Err(StoreError::Exists(e.extension.clone(), e.domain.clone()));
        }
        Ok(())
    }

    fn extensions(&self, domain: Option<&str>) -> Result<Vec<Extension>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT domain, extension, password, display_name, provisioned FROM extensions
             WHERE ?1 IS NULL OR domain = ?1 ORDER BY domain, extension",
        )?;
        let rows = stmt.query_map(params![domain.map(str::to_ascii_lowercase)], row_to_extension)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_password(&self, domain: &str, extension: &str, password: &str) -> Result<(), StoreError> {
        if password.is_empty() {
            return Err(StoreError::Invalid("password"));
        }
        let n = self.conn().execute(
            "UPDATE extensions SET password = ?3 WHERE domain = ?1 AND extension = ?2",
            params![domain.to_ascii_lowercase(), extension, password],
        )?;
        self.changed();
        if n == 0 {
            return Err(StoreError::NotFound(extension.into(), domain.into()));
        }
        Ok(())
    }

    fn set_provisioned(&self, domain: &str, extension: &str, provisioned: bool) -> Result<(), StoreError> {
        let n = self.conn().execute(
            "UPDATE extensions SET provisioned = ?3 WHERE domain = ?1 AND extension = ?2",
            params![domain.to_ascii_lowercase(), extension, provisioned as i64],
        )?;
        self.changed();
        if n == 0 {
            return Err(StoreError::NotFound(extension.into(), domain.into()));
        }
        Ok(())
    }

    fn save_bindings(&self, changes: &[BindingChange<'_>]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut delete = tx.prepare_cached("DELETE FROM bindings WHERE domain = ?1 AND extension = ?2")?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO bindings (domain, extension, contact, instance, reg_id, source, expires_at, call_id, cseq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for c in changes {
                delete.execute(params![c.domain.to_ascii_lowercase(), c.extension])?;
                for b in c.bindings {
                    insert.execute(params![
                        b.domain.to_ascii_lowercase(),
                        b.extension,
                        b.contact,
                        b.instance,
                        b.reg_id,
                        b.source,
                        b.expires_at as i64,
                        b.call_id,
                        b.cseq
                    ])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn bindings(&self, now: u64) -> Result<Vec<Binding>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT domain, extension, contact, instance, reg_id, source, expires_at, call_id, cseq
             FROM bindings WHERE expires_at > ?1",
        )?;
        let rows = stmt.query_map(params![now as i64], |r| {
            Ok(Binding {
                domain: r.get(0)?,
                extension: r.get(1)?,
                contact: r.get(2)?,
                instance: r.get(3)?,
                reg_id: r.get(4)?,
                source: r.get(5)?,
                expires_at: r.get::<_, i64>(6)? as u64,
                call_id: r.get(7)?,
                cseq: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// A random password for a new extension: 16 characters from an alphabet
/// without look-alikes, from the OS CSPRNG.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random number generator");
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_lookups_see_changes_from_this_store_and_from_the_cli() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pbx.db");
        let pbx = SqliteStore::open(&path).unwrap();
        assert_eq!(pbx.extension("example.com", "100").unwrap(), None);
        pbx.add_extension(&ext("100")).unwrap();
        assert_eq!(
            pbx.extension("example.com", "100").unwrap().unwrap().password,
            "s3cret-pw"
        );
        pbx.set_password("example.com", "100", "second").unwrap();
        assert_eq!(pbx.extension("example.com", "100").unwrap().unwrap().password, "second");
        // The CLI is another connection to the same file: its changes are
        // seen within VERSION_CHECK.
        let cli = SqliteStore::open(&path).unwrap();
        cli.set_password("example.com", "100", "third").unwrap();
        cli.add_extension(&ext("101")).unwrap();
        let deadline = std::time::Instant::now() + VERSION_CHECK + std::time::Duration::from_secs(2);
        loop {
            let password = pbx.extension("Example.COM", "100").unwrap().unwrap().password;
            if password == "third" {
                break;
            }
            assert_eq!(password, "second");
            assert!(std::time::Instant::now() < deadline, "the CLI's change was not seen");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(pbx.extension("example.com", "101").unwrap().is_some());
    }

    fn ext(n: &str) -> Extension {
        Extension {
            domain: "Example.com".into(),
            extension: n.into(),
            password: "s3cret-pw".into(),
            display_name: Some("Alice".into()),
            provisioned: false,
        }
    }

    #[test]
    fn extensions_crud_and_no_password_in_debug() {
        let s = SqliteStore::in_memory().unwrap();
        s.add_extension(&ext("100")).unwrap();
        assert!(matches!(s.add_extension(&ext("100")), Err(StoreError::Exists(..))));
        let e = s.extension("example.com", "100").unwrap().unwrap();
        assert_eq!(e.password, "s3cret-pw");
        assert!(!format!("{e:?}").contains("s3cret"));
        s.set_provisioned("example.com", "100", true).unwrap();
        s.set_password("example.com", "100", "new").unwrap();
        let e = s.extension("EXAMPLE.com", "100").unwrap().unwrap();
        assert!(e.provisioned && e.password == "new");
        assert!(s.set_password("example.com", "999", "x").is_err());
        assert_eq!(s.extensions(Some("example.com")).unwrap().len(), 1);
    }

    #[test]
    fn bindings_replace_and_expire() {
        let s = SqliteStore::in_memory().unwrap();
        let b = |contact: &str, exp| Binding {
            domain: "example.com".into(),
            extension: "100".into(),
            contact: contact.into(),
            instance: None,
            reg_id: None,
            source: "tls:127.0.0.1:5000".into(),
            expires_at: exp,
            call_id: "c".into(),
            cseq: 1,
        };
        s.replace_bindings("example.com", "100", &[b("sip:a@x", 100), b("sip:b@x", 10)])
            .unwrap();
        assert_eq!(s.bindings(50).unwrap().len(), 1);
        s.replace_bindings("example.com", "100", &[]).unwrap();
        assert!(s.bindings(0).unwrap().is_empty());
    }

    #[test]
    fn random_passwords_differ() {
        let (a, b) = (random_password(), random_password());
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }
}
