//! The emulator's own PKI: a CA and a loopback server certificate (ECDSA P-256), and the RSA
//! certificate of the registered app that clients sign their assertions with.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha1::Digest;

use crate::error::EmulatorError;
use crate::model::AppCertificate;
use crate::state::{write_private_file, write_public_file};

pub const CA_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";
const SERVER_CERT_FILE: &str = "server.pem";
const SERVER_KEY_FILE: &str = "server-key.pem";

fn cert_err(e: rcgen::Error) -> EmulatorError {
    EmulatorError::Certificate(e.to_string())
}

/// Loads the server certificate from the state dir, or creates the CA and server certificate
/// there on first start (so clients that trusted `ca.pem` keep trusting it across restarts).
pub fn load_or_create_server_config(
    dir: &Path,
) -> Result<Arc<rustls::ServerConfig>, EmulatorError> {
    let cert_path = dir.join(SERVER_CERT_FILE);
    let key_path = dir.join(SERVER_KEY_FILE);
    if !(cert_path.exists() && key_path.exists() && dir.join(CA_FILE).exists()) {
        create_server_pki(dir)?;
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| EmulatorError::Tls(format!("{}: {e}", cert_path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| EmulatorError::Tls(format!("{}: {e}", cert_path.display())))?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| EmulatorError::Tls(format!("{}: {e}", key_path.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EmulatorError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| EmulatorError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn create_server_pki(dir: &Path) -> Result<(), EmulatorError> {
    let ca_key = KeyPair::generate().map_err(cert_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tenant-emulator test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_err)?;

    let server_key = KeyPair::generate().map_err(cert_err)?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).map_err(cert_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "tenant-emulator");
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let server_cert = params
        .signed_by(&server_key, &ca_cert, &ca_key)
        .map_err(cert_err)?;

    write_public_file(&dir.join(CA_FILE), ca_cert.pem().as_bytes())?;
    write_private_file(&dir.join(CA_KEY_FILE), ca_key.serialize_pem().as_bytes())?;
    write_public_file(&dir.join(SERVER_CERT_FILE), server_cert.pem().as_bytes())?;
    write_private_file(
        &dir.join(SERVER_KEY_FILE),
        server_key.serialize_pem().as_bytes(),
    )?;
    Ok(())
}

/// A freshly made app certificate and its private key (PKCS#8 PEM).
#[derive(Clone)]
pub struct GeneratedAppCertificate {
    pub certificate: AppCertificate,
    pub private_key_pem: String,
}

impl std::fmt::Debug for GeneratedAppCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedAppCertificate")
            .field("x5t", &self.certificate.x5t)
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

/// The app certificate for a new tenant. RSA key generation takes seconds in a debug build, so
/// one certificate is made per process and shared by every tenant created in it (tests start many
/// emulators; each separate `tenant-emulator` process still gets its own key).
pub fn app_certificate_for_new_tenant() -> Result<GeneratedAppCertificate, EmulatorError> {
    static CACHE: std::sync::Mutex<Option<GeneratedAppCertificate>> = std::sync::Mutex::new(None);
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(cert) = cache.as_ref() {
        return Ok(cert.clone());
    }
    let cert = generate_app_certificate("writeback-emulator-app")?;
    *cache = Some(cert.clone());
    Ok(cert)
}

/// Entra accepts RSA certificates for client assertions, so the app gets an RSA-2048 key
/// (ring cannot generate RSA keys; the `rsa` crate does, ring then signs the certificate).
pub fn generate_app_certificate(
    common_name: &str,
) -> Result<GeneratedAppCertificate, EmulatorError> {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};

    let mut rng = rand::rngs::OsRng;
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048)
        .map_err(|e| EmulatorError::Certificate(e.to_string()))?;
    let key_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| EmulatorError::Certificate(e.to_string()))?;
    let public_der = private
        .to_public_key()
        .to_pkcs1_der()
        .map_err(|e| EmulatorError::Certificate(e.to_string()))?;
    let key_pair = KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(cert_err)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let cert = params.self_signed(&key_pair).map_err(cert_err)?;
    let der = cert.der().as_ref();
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    Ok(GeneratedAppCertificate {
        certificate: AppCertificate {
            x5t: b64url.encode(sha1::Sha1::digest(der)),
            x5t_s256: b64url.encode(sha2::Sha256::digest(der)),
            public_key_pkcs1_der: base64::engine::general_purpose::STANDARD
                .encode(public_der.as_bytes()),
            cert_pem: cert.pem(),
        },
        private_key_pem: key_pem.to_string(),
    })
}
