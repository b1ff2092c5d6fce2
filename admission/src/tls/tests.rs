#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use super::*;

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vpa-admission-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `m` the way the kubelet writes a Secret volume: files in a timestamped directory,
/// `..data` pointing at it, and the visible names pointing into `..data`. Called again, it
/// swaps `..data` atomically to a new directory and removes the old one.
pub(crate) fn write_secret_volume(dir: &Path, m: &Material, generation: u32) {
    use std::os::unix::fs::symlink;
    let version = format!("..2025_06_01_10_00_{generation:02}.000000001");
    let vdir = dir.join(&version);
    std::fs::create_dir_all(&vdir).unwrap();
    std::fs::write(vdir.join("serverCert.pem"), &m.cert).unwrap();
    std::fs::write(vdir.join("serverKey.pem"), &m.key).unwrap();
    std::fs::write(vdir.join("caCert.pem"), &m.ca).unwrap();
    let old = std::fs::read_link(dir.join("..data")).ok();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(&version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for name in ["serverCert.pem", "serverKey.pem", "caCert.pem"] {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(format!("..data/{name}"), &link).unwrap();
        }
    }
    if let Some(old) = old
        && old != Path::new(&version)
    {
        std::fs::remove_dir_all(dir.join(old)).unwrap();
    }
}

pub(crate) fn files_in(dir: &Path) -> CertFiles {
    CertFiles {
        cert: dir.join("serverCert.pem"),
        key: dir.join("serverKey.pem"),
        ca: dir.join("caCert.pem"),
    }
}

fn ring() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn metrics() -> Arc<AdmissionMetrics> {
    Arc::new(AdmissionMetrics::unregistered())
}

fn sans() -> Vec<String> {
    generated_sans("vpa-webhook", "kube-system", "")
}

#[test]
fn cipher_names_map_to_rustls_suites_and_unknown_ones_are_ignored() {
    let c = cipher_choice(
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:TLS_RSA_WITH_AES_128_CBC_SHA,\
         TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, TLS_AES_128_GCM_SHA256,bogus,\
         TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    );
    let names: Vec<String> = c.tls12.iter().map(|s| format!("{:?}", s.suite())).collect();
    assert_eq!(
        names,
        [
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        ]
    );
    assert_eq!(c.ignored, ["TLS_RSA_WITH_AES_128_CBC_SHA", "bogus"]);
    let p = provider(&c);
    // All three TLS 1.3 suites stay, as in Go.
    assert_eq!(p.cipher_suites.len(), 5);
}

#[test]
fn no_usable_cipher_name_means_the_default_tls12_suites() {
    for flag in ["", "bogus", "TLS_AES_256_GCM_SHA384"] {
        let c = cipher_choice(flag);
        assert_eq!(c.tls12.len(), 6, "{flag}");
        assert_eq!(provider(&c).cipher_suites.len(), 9);
    }
}

#[test]
fn server_config_offers_h2_and_http11() {
    let m = generate(&sans()).unwrap();
    let key = Arc::new(m.certified_key(&ring()).unwrap());
    let resolver = Arc::new(CertResolver::new(key));
    let c = server_config(ring(), MinTlsVersion::Tls13, resolver.clone()).unwrap();
    assert_eq!(c.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    server_config(ring(), MinTlsVersion::Tls12, resolver).unwrap();
}

#[test]
fn generated_sans_cover_the_service_and_the_webhook_address() {
    let s = generated_sans("vpa-webhook", "vpa", "https://vpa.example.com:8443/x");
    for want in [
        "vpa-webhook.vpa.svc",
        "vpa-webhook.vpa.svc.cluster.local",
        "localhost",
        "127.0.0.1",
        "vpa.example.com",
    ] {
        assert!(s.contains(&want.to_string()), "{want} missing in {s:?}");
    }
    assert_eq!(
        address_host("https://10.0.0.7:8000").as_deref(),
        Some("10.0.0.7")
    );
    assert_eq!(
        address_host("https://[fd00::1]:8000/").as_deref(),
        Some("fd00::1")
    );
    assert_eq!(address_host("vpa.local").as_deref(), Some("vpa.local"));
    assert_eq!(address_host(""), None);
    assert_eq!(address_host("https://"), None);
}

#[test]
fn generated_material_is_a_ca_and_a_matching_serving_certificate() {
    let m = generate(&sans()).unwrap();
    assert!(String::from_utf8_lossy(&m.ca).starts_with("-----BEGIN CERTIFICATE-----"));
    m.certified_key(&ring()).unwrap();
    // The serving certificate verifies against the CA for a service name.
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&m.ca) {
        roots.add(ca.unwrap()).unwrap();
    }
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), ring())
            .build()
            .unwrap();
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&m.cert)
        .map(|c| c.unwrap())
        .collect();
    use rustls::client::danger::ServerCertVerifier as _;
    for name in ["vpa-webhook.kube-system.svc", "127.0.0.1", "localhost"] {
        verifier
            .verify_server_cert(
                &chain[0],
                &[],
                &rustls::pki_types::ServerName::try_from(name).unwrap(),
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn a_key_that_does_not_match_is_rejected() {
    let a = generate(&sans()).unwrap();
    let b = generate(&sans()).unwrap();
    let mixed = Material {
        cert: a.cert,
        key: b.key.clone(),
        ca: a.ca,
    };
    let err = mixed.certified_key(&ring()).unwrap_err().to_string();
    assert!(err.to_lowercase().contains("key"), "{err}");
    let no_cert = Material {
        cert: b"not pem".to_vec(),
        ..b.clone()
    };
    assert!(no_cert.certified_key(&ring()).is_err());
    let bad_ca = Material {
        ca: b"garbage".to_vec(),
        ..b
    };
    assert!(bad_ca.certified_key(&ring()).is_err());
}

#[test]
fn load_generates_when_no_files_exist_and_refuses_half_a_pair() {
    let dir = TempDir::new("load");
    let files = files_in(&dir.0);
    let certs = load(&files, &sans(), ring(), metrics()).unwrap();
    assert!(certs.generated);
    assert!(!certs.ca_bundle.borrow().is_empty());
    let mut certs = certs;
    assert!(certs.take_reloader().is_none());

    let m = generate(&sans()).unwrap();
    std::fs::write(&files.cert, &m.cert).unwrap();
    let err = load(&files, &sans(), ring(), metrics()).unwrap_err();
    assert!(matches!(err, TlsError::Incomplete { .. }), "{err}");

    std::fs::write(&files.key, &m.key).unwrap();
    let mut certs = load(&files, &sans(), ring(), metrics()).unwrap();
    assert!(!certs.generated);
    // No CA file: an empty bundle.
    assert!(certs.ca_bundle.borrow().is_empty());
    assert!(certs.take_reloader().is_some());

    let empty = CertFiles {
        cert: PathBuf::new(),
        key: PathBuf::new(),
        ca: PathBuf::new(),
    };
    assert!(load(&empty, &sans(), ring(), metrics()).unwrap().generated);
}

#[tokio::test]
async fn the_reloader_follows_content_through_a_secret_volume_swap() {
    let dir = TempDir::new("reload");
    let first = generate(&sans()).unwrap();
    write_secret_volume(&dir.0, &first, 1);
    let metrics = metrics();
    let mut certs = load(&files_in(&dir.0), &sans(), ring(), metrics.clone()).unwrap();
    let mut reloader = certs.take_reloader().unwrap();
    let served = |c: &ServingCerts| c.resolver.current().cert[0].to_vec();
    let first_der = served(&certs);
    assert_eq!(reloader.poll_once().await, Reload::Unchanged);

    let second = generate(&sans()).unwrap();
    write_secret_volume(&dir.0, &second, 2);
    assert_eq!(
        reloader.poll_once().await,
        Reload::Reloaded { ca_changed: true }
    );
    assert_ne!(served(&certs), first_der);
    assert!(certs.ca_bundle.has_changed().unwrap());
    assert_eq!(*certs.ca_bundle.borrow_and_update(), second.ca);
    assert_eq!(reloader.poll_once().await, Reload::Unchanged);

    // A broken set is reported once and the previous certificate stays.
    let broken = Material {
        key: first.key.clone(),
        ..second.clone()
    };
    write_secret_volume(&dir.0, &broken, 3);
    let before = served(&certs);
    assert!(matches!(reloader.poll_once().await, Reload::Rejected(_)));
    assert_eq!(reloader.poll_once().await, Reload::StillRejected);
    assert_eq!(served(&certs), before);

    // Fixed again, with the same CA: the caBundle does not change.
    let third = Material {
        cert: first.cert.clone(),
        key: first.key.clone(),
        ca: second.ca.clone(),
    };
    write_secret_volume(&dir.0, &third, 4);
    assert_eq!(
        reloader.poll_once().await,
        Reload::Reloaded { ca_changed: false }
    );
    assert_eq!(served(&certs), first_der);
    assert!(!certs.ca_bundle.has_changed().unwrap());
}

#[tokio::test]
async fn the_reloader_also_sees_files_rewritten_in_place() {
    let dir = TempDir::new("rewrite");
    let files = files_in(&dir.0);
    let first = generate(&sans()).unwrap();
    std::fs::write(&files.cert, &first.cert).unwrap();
    std::fs::write(&files.key, &first.key).unwrap();
    let mut certs = load(&files, &sans(), ring(), metrics()).unwrap();
    let mut reloader = certs.take_reloader().unwrap();
    let second = generate(&sans()).unwrap();
    std::fs::write(&files.key, &second.key).unwrap();
    std::fs::write(&files.cert, &second.cert).unwrap();
    std::fs::write(&files.ca, &second.ca).unwrap();
    assert_eq!(
        reloader.poll_once().await,
        Reload::Reloaded { ca_changed: true }
    );
    // The key file vanishing is reported and the certificate kept.
    std::fs::remove_file(&files.key).unwrap();
    assert!(matches!(reloader.poll_once().await, Reload::Rejected(_)));
    assert_eq!(
        certs.resolver.current().cert[0].as_ref(),
        CertificateDer::from_pem_slice(&second.cert)
            .unwrap()
            .as_ref()
    );
}
