//! TLS client configuration for LDAPS/StartTLS: the DC's certificate is always validated.

use crate::error::AdError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;

/// Builds a rustls config trusting `ca_file` (PEM, one or more certificates), or the
/// system's trust store when none is given.
///
/// The ring provider is chosen explicitly: with more than one provider compiled into the
/// binary, rustls refuses to guess at runtime.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, AdError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| AdError::Tls(format!("cannot read CA file {}: {e}", path.display())))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| AdError::Tls(format!("bad PEM in CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(AdError::Tls(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    AdError::Tls(format!("unusable CA certificate in {}: {e}", path.display()))
                })?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                // A broken certificate in the system store must not stop the others.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(AdError::Tls(
                    "no ca_file configured and the system trust store is empty".into(),
                ));
            }
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| AdError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}
