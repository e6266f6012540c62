//! PKCS#12 (`.pfx`) client certificates, as Windows and OpenSSL export them.
//!
//! Both the legacy ciphers (pbeWithSHAAnd3-KeyTripleDES-CBC, pbeWithSHAAnd40BitRC2-CBC: older
//! Windows, `openssl pkcs12 -legacy`) and PBES2/AES-256 (Windows Server 2019+, OpenSSL 3) are
//! read by `p12-keystore` (pure Rust). The certificate used is the one whose public key matches
//! the private key, so CA certificates exported alongside it ("include all certificates in the
//! path") are ignored whatever their order in the file.

use crate::config::Secret;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p12_keystore::error::Error as Pkcs12Error;
use p12_keystore::Pkcs12Archive;
use rustls::sign::CertifiedKey;
use rustls::SignatureAlgorithm;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::fmt;

/// `rsaEncryption`: the only key type the RS256/PS256 client assertion can be signed with.
const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";
const PEM_LINE_WIDTH: usize = 64;

/// The leaf certificate and private key taken out of a PFX.
pub struct PfxCredential {
    /// DER of the certificate matching the private key (its hash is the thumbprint Entra matches).
    pub certificate_der: Vec<u8>,
    /// The RSA private key as PKCS#8 PEM (`BEGIN PRIVATE KEY`), the form the assertion signer
    /// loads.
    pub private_key_pem: Secret,
}

impl fmt::Debug for PfxCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PfxCredential")
            .field("certificate_der_len", &self.certificate_der.len())
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

/// The password as stored in `certificate_pfx_password_file`: one trailing newline (LF or CRLF,
/// as editors add) and a leading UTF-8 byte-order mark (as Notepad adds) are not part of it.
pub fn password_from_file_text(text: &str) -> &str {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match text.strip_suffix('\n') {
        Some(rest) => rest.strip_suffix('\r').unwrap_or(rest),
        None => text,
    }
}

/// Decrypts `pfx` with `password` and returns the certificate and RSA key of the app.
/// Errors are operator-facing sentences without the password or key material.
pub fn read_pfx(pfx: &[u8], password: &str) -> Result<PfxCredential, String> {
    let archive = Pkcs12Archive::from_pkcs12(pfx, password).map_err(describe_pkcs12_error)?;
    let key_bag = match archive.keys.as_slice() {
        [] => {
            return Err(
                "the PFX holds no private key (export the certificate with its private key)".into(),
            )
        }
        [only] => only,
        several => {
            return Err(format!(
                "the PFX holds {} private keys; export only the app certificate and its key",
                several.len()
            ))
        }
    };
    let key_der = key_bag.key.as_der();
    let key_oid = key_bag.key.oid().to_string();
    if key_oid != RSA_ENCRYPTION_OID {
        return Err(format!(
            "the private key is {} ({key_oid}), not RSA; Entra client assertions are signed \
             RS256/PS256, so the app certificate needs an RSA key",
            key_kind(&key_oid)
        ));
    }
    let certificates: Vec<&[u8]> = archive.certs.iter().map(|bag| bag.cert.as_der()).collect();
    let certificate_der = matching_certificate(key_der, &certificates)?.to_vec();
    let private_key_pem = Secret::new(pkcs8_pem(key_der));
    // Checked now so a key the JWT signer cannot load fails at startup, not at the first token.
    jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.expose().as_bytes())
        .map_err(|e| format!("the private key cannot be loaded for signing: {e}"))?;
    Ok(PfxCredential {
        certificate_der,
        private_key_pem,
    })
}

/// The first certificate whose public key is the one of the PKCS#8 RSA key `key_der`.
pub fn matching_certificate<'c>(
    key_der: &[u8],
    certificates: &[&'c [u8]],
) -> Result<&'c [u8], String> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.to_vec()));
    // The same loader the assertion signer's crypto (ring) uses: a key it refuses here (e.g.
    // RSA under 2048 bits) could not sign later either, so say so now.
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| {
        format!("the RSA private key cannot be used for signing (2048 to 4096 bits needed): {e}")
    })?;
    if signing_key.algorithm() != SignatureAlgorithm::RSA {
        return Err("the private key is not an RSA key".into());
    }
    if certificates.is_empty() {
        return Err(
            "the PFX holds no certificate (export the certificate, not only the key)".into(),
        );
    }
    certificates
        .iter()
        .copied()
        .find(|der| {
            let pair = CertifiedKey::new(
                vec![CertificateDer::from(der.to_vec())],
                signing_key.clone(),
            );
            pair.keys_match().is_ok()
        })
        .ok_or_else(|| {
            format!(
                "none of the {} certificate(s) in the PFX belongs to its private key",
                certificates.len()
            )
        })
}

fn describe_pkcs12_error(error: Pkcs12Error) -> String {
    match error {
        Pkcs12Error::MacError(_) => "wrong password (the PFX integrity check failed); check \
             certificate_pfx_password_file"
            .into(),
        // Without a MAC a wrong password surfaces as garbage after decryption.
        Pkcs12Error::UnpadError => "cannot decrypt the PFX: wrong password or damaged file".into(),
        Pkcs12Error::UnsupportedEncryptionScheme => {
            "the PFX uses an encryption scheme that is not supported (3DES, RC2-40 and \
             PBES2/AES are); re-export it with AES-256"
                .into()
        }
        Pkcs12Error::UnsupportedMacAlgorithm => {
            "the PFX integrity check uses an unsupported MAC algorithm".into()
        }
        other => format!("not a readable PFX (PKCS#12) file: {other}"),
    }
}

fn key_kind(oid: &str) -> &'static str {
    match oid {
        "1.2.840.10045.2.1" => "an EC key",
        "1.3.101.112" => "an Ed25519 key",
        "1.3.101.113" => "an Ed448 key",
        "1.2.840.113549.1.1.10" => "an RSA-PSS-only key",
        "1.2.840.10040.4.1" => "a DSA key",
        _ => "an unsupported key type",
    }
}

fn pkcs8_pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = String::with_capacity(body.len() + body.len() / PEM_LINE_WIDTH + 64);
    pem.push_str("-----BEGIN PRIVATE KEY-----\n");
    // Base64 output is ASCII, so splitting the bytes cannot cut a character.
    for line in body.as_bytes().chunks(PEM_LINE_WIDTH) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

#[cfg(test)]
#[path = "pfx_tests.rs"]
mod tests;
