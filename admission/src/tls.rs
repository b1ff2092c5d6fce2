//! The webhook's TLS: the rustls server configuration (TLS 1.2/1.3, upstream's
//! `--min-tls-version` and `--tls-ciphers`, ALPN `h2` and `http/1.1`), the serving certificate
//! and how it changes.
//!
//! * [`CertResolver`] holds the current `Arc<CertifiedKey>`; every handshake takes the one
//!   current at that moment, so a swap never affects open connections.
//! * [`load`] reads `--tls-cert-file`/`--tls-private-key`/`--client-ca-file`, or, when neither
//!   the certificate nor the key exists (or both are given as ""), [`generate`]s a CA and a
//!   serving certificate in memory. The CA PEM is published on a `watch` channel: it is the
//!   webhook's caBundle.
//! * [`Reloader`] polls the files and compares their **content** with what is served, so it
//!   follows any way of replacing them, including the kubelet's Secret volume update (the
//!   `..data` symlink swapped to a new directory). A changed set is served only if it parses
//!   and the key matches the certificate; if the certificate changed while the set was being
//!   read (a swap in progress) the round is skipped and retried at the next poll. A bad set is
//!   reported once (log + `cert_reloads_total{result="error"}`) and the previous certificate
//!   stays in use.
//!
//! A generated CA lives only as long as the process, and every replica makes its own: use
//! generated certificates with one replica (or in tests), and the Secret otherwise.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedCipherSuite};
use tokio::sync::watch;

use crate::config::MinTlsVersion;
use crate::metrics::AdmissionMetrics;

/// Errors building the TLS configuration or loading certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Only one of the certificate and the key exists.
    #[error("{present} exists but {missing} does not: give both, or neither to generate them")]
    Incomplete {
        /// The file that exists.
        present: PathBuf,
        /// The file that does not.
        missing: PathBuf,
    },
    /// The PEM content is not usable.
    #[error("{what}: {why}")]
    Pem {
        /// Which input.
        what: String,
        /// What is wrong.
        why: String,
    },
    /// rustls rejected the key, the pair, or the configuration.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The TLS 1.2 cipher suites chosen by `--tls-ciphers`, and the names that were ignored.
#[derive(Debug, Clone)]
pub struct CipherChoice {
    /// The enabled TLS 1.2 suites (all of ring's when the flag names none we support).
    pub tls12: Vec<SupportedCipherSuite>,
    /// Names that are unknown or that rustls does not implement (CBC, RSA key exchange, ...).
    pub ignored: Vec<String>,
}

/// Go's TLS 1.3 suite names: known, but (as in Go) they do not restrict anything.
const GO_TLS13_NAMES: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

fn go_tls12_suite(name: &str) -> Option<SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite as cs;
    Some(match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => {
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        _ => return None,
    })
}

/// Maps `--tls-ciphers` (Go names, comma- or colon-separated) to rustls suites.
pub fn cipher_choice(flag: &str) -> CipherChoice {
    let mut tls12 = Vec::new();
    let mut ignored = Vec::new();
    for name in crate::config::split_list(flag, &[',', ':']) {
        if let Some(suite) = go_tls12_suite(&name) {
            if !tls12.contains(&suite) {
                tls12.push(suite);
            }
        } else if !GO_TLS13_NAMES.contains(&name.as_str()) {
            ignored.push(name);
        }
    }
    if tls12.is_empty() {
        tls12 = rustls::crypto::ring::DEFAULT_CIPHER_SUITES
            .iter()
            .copied()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .collect();
    }
    CipherChoice { tls12, ignored }
}

/// The ring provider with every TLS 1.3 suite and the chosen TLS 1.2 suites.
pub fn provider(choice: &CipherChoice) -> CryptoProvider {
    let base = rustls::crypto::ring::default_provider();
    let mut suites: Vec<SupportedCipherSuite> = base
        .cipher_suites
        .iter()
        .copied()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .collect();
    suites.extend(choice.tls12.iter().copied());
    CryptoProvider {
        cipher_suites: suites,
        ..base
    }
}

/// The server configuration: versions from `min`, certificates from `resolver`, ALPN h2 then
/// http/1.1.
pub fn server_config(
    provider: Arc<CryptoProvider>,
    min: MinTlsVersion,
    resolver: Arc<dyn ResolvesServerCert>,
) -> Result<ServerConfig, TlsError> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match min {
        MinTlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinTlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Hands the current certificate to every handshake; [`CertResolver::set`] swaps it.
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    /// Serving `key`.
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        Self {
            current: RwLock::new(key),
        }
    }

    /// The certificate served to new connections.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Serves `key` to connections from now on.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = key;
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The PEM contents of one certificate set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Material {
    /// Serving certificate chain.
    pub cert: Vec<u8>,
    /// Private key.
    pub key: Vec<u8>,
    /// CA bundle (empty: none; the API server then uses its system roots).
    pub ca: Vec<u8>,
}

impl Material {
    /// Parses the set into a served key, checking that the key matches the certificate and
    /// that a non-empty CA bundle holds certificates.
    pub fn certified_key(&self, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
        let chain = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error("serving certificate", e))?;
        if chain.is_empty() {
            return Err(TlsError::Pem {
                what: "serving certificate".into(),
                why: "no CERTIFICATE block".into(),
            });
        }
        let key =
            PrivateKeyDer::from_pem_slice(&self.key).map_err(|e| pem_error("private key", e))?;
        if !self.ca.is_empty() {
            let cas = CertificateDer::pem_slice_iter(&self.ca)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| pem_error("CA bundle", e))?;
            if cas.is_empty() {
                return Err(TlsError::Pem {
                    what: "CA bundle".into(),
                    why: "no CERTIFICATE block".into(),
                });
            }
        }
        Ok(CertifiedKey::from_der(chain, key, provider)?)
    }
}

fn pem_error(what: &str, e: rustls::pki_types::pem::Error) -> TlsError {
    TlsError::Pem {
        what: what.to_string(),
        why: e.to_string(),
    }
}

/// Where the certificate files are (`--tls-cert-file`, `--tls-private-key`,
/// `--client-ca-file`); an empty path means "not given".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFiles {
    /// Serving certificate.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
    /// CA bundle.
    pub ca: PathBuf,
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, TlsError> {
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

async fn read_async(path: &Path) -> Result<Vec<u8>, TlsError> {
    if path.as_os_str().is_empty() {
        return Ok(Vec::new());
    }
    tokio::fs::read(path)
        .await
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// Generates a CA and a serving certificate for `sans` (DNS names or IP addresses), valid
/// from yesterday for ten years.
pub fn generate(sans: &[String]) -> Result<Material, TlsError> {
    use chrono::Datelike as _;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let start = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    let day = |d: chrono::NaiveDate| {
        rcgen::date_time_ymd(
            d.year(),
            u8::try_from(d.month()).unwrap_or(1),
            u8::try_from(d.day()).unwrap_or(1),
        )
    };
    let end = start
        .with_year(start.year() + 10)
        .unwrap_or(start + chrono::Days::new(3650));

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "vpa-admission CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = day(start);
    ca_params.not_after = day(end);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut params = CertificateParams::new(sans.to_vec())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        sans.first()
            .cloned()
            .unwrap_or_else(|| "vpa-admission".into()),
    );
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = day(start);
    params.not_after = day(end);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;
    Ok(Material {
        cert: cert.pem().into_bytes(),
        key: key.serialize_pem().into_bytes(),
        ca: ca.pem().into_bytes(),
    })
}

/// The SANs of a generated serving certificate: the Service's DNS names, localhost and the
/// loopback addresses, and the host of `--webhook-address`.
pub fn generated_sans(service: &str, namespace: &str, webhook_address: &str) -> Vec<String> {
    let mut sans = vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        format!("{service}.{namespace}"),
        service.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Some(host) = address_host(webhook_address)
        && !sans.contains(&host)
    {
        sans.push(host);
    }
    sans.retain(|s| !s.is_empty() && !s.starts_with('.'));
    sans
}

/// The host of `https://host:port/path`, `host:port`, `[v6]:port` or `host`.
pub fn address_host(address: &str) -> Option<String> {
    let rest = address
        .split_once("://")
        .map_or(address, |(_, r)| r)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split_once(']').map(|(h, _)| h).unwrap_or(v6)
    } else if rest.matches(':').count() > 1 {
        rest // bare IPv6
    } else {
        rest.split(':').next().unwrap_or_default()
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// The serving certificates of the process.
pub struct ServingCerts {
    /// Resolver for the rustls configuration.
    pub resolver: Arc<CertResolver>,
    /// The CA bundle (caBundle of the webhook); changes when the CA file changes.
    pub ca_bundle: watch::Receiver<Vec<u8>>,
    /// True when generated in memory.
    pub generated: bool,
    reloader: Option<Reloader>,
}

impl std::fmt::Debug for ServingCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCerts")
            .field("generated", &self.generated)
            .finish_non_exhaustive()
    }
}

impl ServingCerts {
    /// The file poller (`None` for generated certificates); take it once and run it.
    pub fn take_reloader(&mut self) -> Option<Reloader> {
        self.reloader.take()
    }
}

/// Loads the certificate set from `files`, or generates one for `sans` when neither the
/// certificate nor the key exists.
pub fn load(
    files: &CertFiles,
    sans: &[String],
    provider: Arc<CryptoProvider>,
    metrics: Arc<AdmissionMetrics>,
) -> Result<ServingCerts, TlsError> {
    let cert = read_optional(&files.cert)?;
    let key = read_optional(&files.key)?;
    let (material, generated) = match (cert, key) {
        (Some(cert), Some(key)) => {
            let ca = read_optional(&files.ca)?.unwrap_or_default();
            (Material { cert, key, ca }, false)
        }
        (None, None) => (generate(sans)?, true),
        (Some(_), None) => {
            return Err(TlsError::Incomplete {
                present: files.cert.clone(),
                missing: files.key.clone(),
            });
        }
        (None, Some(_)) => {
            return Err(TlsError::Incomplete {
                present: files.key.clone(),
                missing: files.cert.clone(),
            });
        }
    };
    let key = material.certified_key(&provider)?;
    let resolver = Arc::new(CertResolver::new(Arc::new(key)));
    let (ca_tx, ca_rx) = watch::channel(material.ca.clone());
    let reloader = (!generated).then(|| Reloader {
        files: files.clone(),
        served: material,
        rejected: None,
        resolver: resolver.clone(),
        ca_tx,
        provider,
        metrics,
    });
    Ok(ServingCerts {
        resolver,
        ca_bundle: ca_rx,
        generated,
        reloader,
    })
}

/// What one poll of the files found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// Same content as served.
    Unchanged,
    /// A new certificate is served (and `ca_changed` says whether the CA bundle changed).
    Reloaded {
        /// The CA bundle changed too.
        ca_changed: bool,
    },
    /// The certificate changed while being read; retried at the next poll.
    Unsettled,
    /// The new content is unusable; the old certificate stays.
    Rejected(String),
    /// The same unusable content as last time (not reported again).
    StillRejected,
}

/// Polls the certificate files and swaps the served certificate when their content changes.
pub struct Reloader {
    files: CertFiles,
    served: Material,
    rejected: Option<Material>,
    resolver: Arc<CertResolver>,
    ca_tx: watch::Sender<Vec<u8>>,
    provider: Arc<CryptoProvider>,
    metrics: Arc<AdmissionMetrics>,
}

impl Reloader {
    async fn read(&self) -> Result<Option<Material>, TlsError> {
        let cert = read_async(&self.files.cert).await?;
        let key = read_async(&self.files.key).await?;
        let ca = match read_async(&self.files.ca).await {
            Ok(ca) => ca,
            // The CA file is optional.
            Err(TlsError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let again = read_async(&self.files.cert).await?;
        if again != cert {
            return Ok(None);
        }
        Ok(Some(Material { cert, key, ca }))
    }

    /// Reads the files once and serves them if they changed and are usable.
    pub async fn poll_once(&mut self) -> Reload {
        let material = match self.read().await {
            Ok(Some(m)) => m,
            Ok(None) => return Reload::Unsettled,
            Err(e) => {
                let msg = e.to_string();
                tracing::warn!(error = %msg, "cannot read the certificate files; serving the previous certificate");
                self.metrics.cert_reload(false);
                return Reload::Rejected(msg);
            }
        };
        if material == self.served {
            self.rejected = None;
            return Reload::Unchanged;
        }
        if self.rejected.as_ref() == Some(&material) {
            return Reload::StillRejected;
        }
        match material.certified_key(&self.provider) {
            Ok(key) => {
                self.resolver.set(Arc::new(key));
                let ca_changed = material.ca != self.served.ca;
                if ca_changed {
                    self.ca_tx.send_replace(material.ca.clone());
                }
                self.served = material;
                self.rejected = None;
                self.metrics.cert_reload(true);
                tracing::info!(ca_changed, "serving a reloaded certificate");
                Reload::Reloaded { ca_changed }
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::warn!(error = %msg, "the changed certificate files are not usable; serving the previous certificate");
                self.metrics.cert_reload(false);
                self.rejected = Some(material);
                Reload::Rejected(msg)
            }
        }
    }

    /// Polls every `interval` until `stop` resolves.
    pub async fn run(mut self, interval: Duration, stop: impl Future<Output = ()>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let outcome = self.poll_once().await;
                    tracing::trace!(?outcome, "certificate poll");
                }
                () = &mut stop => return,
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
