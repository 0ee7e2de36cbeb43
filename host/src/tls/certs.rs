//! Certificates per domain.
//!
//! Layout of the certificates folder:
//! ```text
//! certs/
//!   ca/ca.pem, ca/ca-key.pem       development CA (first run only; trust ca.pem on test phones)
//!   <domain>/cert.pem              chain, leaf first
//!   <domain>/key.pem               private key (PKCS#8, PKCS#1 or SEC1)
//! ```
//! The default certificate is the default domain's.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::crypto::ring::sign::any_supported_type;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The development CA certificate, relative to the certificates folder.
pub const DEV_CA_FILE: &str = "ca/ca.pem";
const DEV_CA_KEY: &str = "ca/ca-key.pem";
const DEV_CA_NAME: &str = "pbx development CA";

/// Why certificates could not be loaded or created. Never carries key bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Generating the development CA or a certificate failed.
    #[error("generating a certificate: {0}")]
    Generate(String),
    /// No certificate for the default domain.
    #[error("no certificate for the default domain {0}")]
    NoDefault(String),
}

/// The certificates the PBX can present, by lower-case domain name.
pub struct CertStore {
    default_domain: String,
    by_domain: HashMap<String, Arc<CertifiedKey>>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut domains: Vec<&String> = self.by_domain.keys().collect();
        domains.sort();
        f.debug_struct("CertStore")
            .field("default_domain", &self.default_domain)
            .field("domains", &domains)
            .finish()
    }
}

impl CertStore {
    /// Load every `<domain>/` of `dir`. If the default domain has no
    /// certificate, create a development CA (once) and a certificate for it
    /// signed by that CA, valid for the domain, `localhost`, 127.0.0.1 and ::1.
    pub fn load_or_init(dir: &Path, default_domain: &str) -> Result<CertStore, CertError> {
        let default_domain = default_domain.to_ascii_lowercase();
        if !dir.join(&default_domain).join("cert.pem").exists() {
            issue_dev_cert(dir, &default_domain)?;
            tracing::info!(
                domain = default_domain,
                "first run: created a development certificate; phones that check certificates must trust {}",
                dir.join(DEV_CA_FILE).display()
            );
        }
        Self::load(dir, &default_domain)
    }

    /// Load every `<domain>/cert.pem` + `key.pem` of `dir`.
    pub fn load(dir: &Path, default_domain: &str) -> Result<CertStore, CertError> {
        let mut by_domain = HashMap::new();
        let entries = std::fs::read_dir(dir).map_err(|source| CertError::Io {
            path: dir.into(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(domain) = path.file_name().and_then(|n| n.to_str()).map(str::to_ascii_lowercase) else {
                continue;
            };
            if domain == "ca" || !path.join("cert.pem").exists() {
                continue;
            }
            let key = load_certified_key(&path.join("cert.pem"), &path.join("key.pem"))?;
            by_domain.insert(domain, Arc::new(key));
        }
        let default_domain = default_domain.to_ascii_lowercase();
        if !by_domain.contains_key(&default_domain) {
            return Err(CertError::NoDefault(default_domain));
        }
        Ok(CertStore {
            default_domain,
            by_domain,
        })
    }

    /// Is there a certificate for `domain` (lower-case)?
    pub fn has(&self, domain: &str) -> bool {
        self.by_domain.contains_key(domain)
    }

    /// The certificate for `domain`, or the default one.
    pub fn get(&self, domain: Option<&str>) -> (String, Arc<CertifiedKey>) {
        match domain.and_then(|d| self.by_domain.get_key_value(d)) {
            Some((d, k)) => (d.clone(), k.clone()),
            None => (
                self.default_domain.clone(),
                self.by_domain[&self.default_domain].clone(),
            ),
        }
    }

    /// The default domain.
    pub fn default_domain(&self) -> &str {
        &self.default_domain
    }

    /// The domains that have a certificate.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.by_domain.keys().map(String::as_str)
    }
}

fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| CertError::Pem {
            path: cert.into(),
            what: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::Pem {
            path: cert.into(),
            what: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(CertError::Pem {
            path: cert.into(),
            what: "no certificate".into(),
        });
    }
    // The key's own parse errors are not echoed: they could quote key bytes.
    let der = PrivateKeyDer::from_pem_file(key).map_err(|_| CertError::Pem {
        path: key.into(),
        what: "no readable private key (PKCS#8, PKCS#1 or SEC1 PEM expected)".into(),
    })?;
    let signing = any_supported_type(&der).map_err(|_| CertError::Pem {
        path: key.into(),
        what: "unsupported private key type".into(),
    })?;
    Ok(CertifiedKey::new(chain, signing))
}

/// Create (or reuse) the development CA in `dir/ca/` and issue a
/// certificate for `domain` into `dir/<domain>/`.
pub fn issue_dev_cert(dir: &Path, domain: &str) -> Result<(), CertError> {
    let gen_err = |e: rcgen::Error| CertError::Generate(e.to_string());
    let issuer = dev_ca(dir)?;

    let mut sans = vec![domain.to_string(), "localhost".to_string()];
    sans.dedup();
    let mut leaf = CertificateParams::new(sans).map_err(gen_err)?;
    leaf.distinguished_name.push(DnType::CommonName, domain);
    for ip in ["127.0.0.1", "::1"] {
        if let Ok(addr) = ip.parse() {
            leaf.subject_alt_names.push(SanType::IpAddress(addr));
        }
    }
    let leaf_key = KeyPair::generate().map_err(gen_err)?;
    let cert = leaf.signed_by(&leaf_key, &issuer).map_err(gen_err)?;
    let out = dir.join(domain);
    write_private(&out.join("key.pem"), leaf_key.serialize_pem().as_bytes())?;
    write(&out.join("cert.pem"), cert.pem().as_bytes())?;
    Ok(())
}

/// Issue a TLS client certificate for a phone from the development CA of
/// `dir` (created if missing), with the subject `CN=<common_name>` plus
/// `O=<organization>` if given. Returns the certificate and its private key
/// as PEM; nothing is written but the CA.
pub fn issue_dev_client_cert(
    dir: &Path,
    common_name: &str,
    organization: Option<&str>,
) -> Result<(String, String), CertError> {
    let gen_err = |e: rcgen::Error| CertError::Generate(e.to_string());
    let issuer = dev_ca(dir)?;
    let mut leaf = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    leaf.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(o) = organization {
        leaf.distinguished_name.push(DnType::OrganizationName, o);
    }
    leaf.distinguished_name.push(DnType::CommonName, common_name);
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().map_err(gen_err)?;
    let cert = leaf.signed_by(&key, &issuer).map_err(gen_err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The development CA of `dir/ca/`, created on first use.
fn dev_ca(dir: &Path) -> Result<Issuer<'static, KeyPair>, CertError> {
    let gen_err = |e: rcgen::Error| CertError::Generate(e.to_string());
    let ca_key_path = dir.join(DEV_CA_KEY);
    let ca_params = {
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        p.distinguished_name.push(DnType::CommonName, DEV_CA_NAME);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p
    };
    let ca_key = if ca_key_path.exists() {
        let pem = read(&ca_key_path)?;
        KeyPair::from_pem(&pem).map_err(|_| CertError::Pem {
            path: ca_key_path.clone(),
            what: "not a usable CA key".into(),
        })?
    } else {
        let key = KeyPair::generate().map_err(gen_err)?;
        let cert = ca_params.self_signed(&key).map_err(gen_err)?;
        write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
        write(&dir.join(DEV_CA_FILE), cert.pem().as_bytes())?;
        key
    };
    Ok(Issuer::new(ca_params, ca_key))
}

fn read(path: &Path) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(|source| CertError::Io {
        path: path.into(),
        source,
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| CertError::Io {
            path: parent.into(),
            source,
        })?;
    }
    std::fs::write(path, bytes).map_err(|source| CertError::Io {
        path: path.into(),
        source,
    })
}

/// Write a private key readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| CertError::Io {
            path: parent.into(),
            source,
        })?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| CertError::Io {
            path: path.into(),
            source,
        })?;
    f.write_all(bytes).map_err(|source| CertError::Io {
        path: path.into(),
        source,
    })
}
