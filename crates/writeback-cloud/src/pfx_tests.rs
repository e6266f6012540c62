//! PFX files are made at test time with the `openssl` command from the throwaway pair in
//! tests/data, so every cipher variant is exactly what OpenSSL (like Windows) writes.

use super::*;
use crate::auth::{client_assertion, first_certificate_der, AssertionInput};
use crate::config::{CertificateAlgorithm, CloudConfig, Credential};
use crate::error::CloudError;
use rustls_pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSWORD: &str = "Pfx pass-word 42";

struct Workdir(PathBuf);

impl Workdir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("wb-cloud-pfx-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Runs openssl in this directory; the test fails with its stderr if openssl does.
    fn openssl(&self, args: &[&str]) -> String {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(&self.0)
            .output()
            .expect("the openssl command runs");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    /// `openssl pkcs12 -export` of `cert`/`key` (either may be None) into `name`.
    fn export(
        &self,
        name: &str,
        cert: Option<&Path>,
        key: Option<&Path>,
        password: &str,
        extra: &[&str],
    ) -> Vec<u8> {
        let out = self.path(name);
        let passout = format!("pass:{password}");
        let mut args = vec![
            "pkcs12",
            "-export",
            "-out",
            path_str(&out),
            "-passout",
            &passout,
        ];
        match cert {
            Some(cert) => args.extend(["-in", path_str(cert)]),
            None => args.push("-nocerts"),
        }
        match key {
            Some(key) => args.extend(["-inkey", path_str(key)]),
            None => args.push("-nokeys"),
        }
        args.extend(extra);
        self.openssl(&args);
        std::fs::read(&out).expect("pfx written")
    }

    /// What `openssl pkcs12 -info` says about the file's ciphers.
    fn info(&self, name: &str, password: &str) -> String {
        let passin = format!("pass:{password}");
        self.openssl(&[
            "pkcs12",
            "-info",
            "-noout",
            "-legacy",
            "-in",
            path_str(&self.path(name)),
            "-passin",
            &passin,
        ])
    }

    /// A fresh self-signed certificate and key: `kind` is an `openssl req -newkey` argument.
    fn self_signed(&self, name: &str, kind: &[&str]) -> (PathBuf, PathBuf) {
        let cert = self.path(&format!("{name}.crt"));
        let key = self.path(&format!("{name}.key"));
        let subject = format!("/CN={name}");
        let mut args = vec!["req", "-x509", "-nodes", "-days", "2", "-subj", &subject];
        args.extend(kind);
        args.extend(["-keyout", path_str(&key), "-out", path_str(&cert)]);
        self.openssl(&args);
        (cert, key)
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

fn data_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn data_text(name: &str) -> String {
    std::fs::read_to_string(data_path(name)).expect("test data")
}

fn test_cert_der() -> Vec<u8> {
    first_certificate_der(&data_text("test_app_cert.pem")).expect("test cert")
}

fn test_key_pkcs8_der() -> Vec<u8> {
    PrivatePkcs8KeyDer::from_pem_slice(data_text("test_app_key.pem").as_bytes())
        .expect("PKCS#8 test key")
        .secret_pkcs8_der()
        .to_vec()
}

/// `(x5t, x5t#S256)` from the header of an assertion signed with `credential`.
fn assertion_thumbprints(credential: &PfxCredential) -> (String, String) {
    let sign = |algorithm| {
        let jwt = client_assertion(&AssertionInput {
            client_id: "c",
            token_url: "https://login.example.test/t/oauth2/v2.0/token",
            certificate_der: &credential.certificate_der,
            private_key_pem: &credential.private_key_pem,
            algorithm,
            now: 1_700_000_000,
            jti: "j".into(),
        })
        .expect("signs");
        jsonwebtoken::decode_header(jwt.expose()).expect("JWT header")
    };
    let rs256 = sign(CertificateAlgorithm::RS256).x5t.expect("x5t");
    let ps256 = sign(CertificateAlgorithm::PS256)
        .x5t_s256
        .expect("x5t#S256");
    (rs256, ps256)
}

/// `test_app_thumbprints.txt`, as openssl computed it when the pair was made.
fn expected_thumbprints() -> (String, String) {
    let text = data_text("test_app_thumbprints.txt");
    let value = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .expect("thumbprint line")
            .trim()
            .to_string()
    };
    (value("x5t="), value("x5t#S256="))
}

fn read_error(pfx: &[u8], password: &str) -> String {
    match read_pfx(pfx, password) {
        Err(message) => message,
        Ok(credential) => panic!("expected an error, got {credential:?}"),
    }
}

#[test]
fn aes_and_legacy_pfx_yield_the_app_certificate_and_key() {
    let work = Workdir::new();
    let (cert, key) = (
        data_path("test_app_cert.pem"),
        data_path("test_app_key.pem"),
    );
    // (file, openssl export flags, ciphers `openssl pkcs12 -info` must report for it)
    let variants: [(&str, &[&str], &[&str]); 2] = [
        ("aes.pfx", &[], &["PBES2, PBKDF2, AES-256-CBC"]),
        (
            "legacy.pfx",
            &["-legacy"],
            &[
                "pbeWithSHA1And40BitRC2-CBC",
                "pbeWithSHA1And3-KeyTripleDES-CBC",
            ],
        ),
    ];
    for (name, flags, ciphers) in variants {
        let pfx = work.export(name, Some(&cert), Some(&key), PASSWORD, flags);
        let info = work.info(name, PASSWORD);
        for cipher in ciphers {
            assert!(info.contains(cipher), "{name} is not {cipher}: {info}");
        }
        let credential = read_pfx(&pfx, PASSWORD).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(credential.certificate_der, test_cert_der(), "{name}");
        let key_der =
            PrivatePkcs8KeyDer::from_pem_slice(credential.private_key_pem.expose().as_bytes())
                .expect("PKCS#8 PEM");
        assert_eq!(
            key_der.secret_pkcs8_der(),
            test_key_pkcs8_der().as_slice(),
            "{name}"
        );
        assert_eq!(
            assertion_thumbprints(&credential),
            expected_thumbprints(),
            "{name}"
        );
    }
}

#[test]
fn wrong_password_is_reported_as_such() {
    let work = Workdir::new();
    let (cert, key) = (
        data_path("test_app_cert.pem"),
        data_path("test_app_key.pem"),
    );
    for (name, flags) in [("aes.pfx", &[][..]), ("legacy.pfx", &["-legacy"][..])] {
        let pfx = work.export(name, Some(&cert), Some(&key), PASSWORD, flags);
        for wrong in ["", "pfx pass-word 42", "Pfx pass-word 42\n"] {
            let message = read_error(&pfx, wrong);
            assert!(
                message.contains("wrong password"),
                "{name} {wrong:?}: {message}"
            );
        }
    }
}

#[test]
fn empty_password_is_accepted() {
    let work = Workdir::new();
    let (cert, key) = (
        data_path("test_app_cert.pem"),
        data_path("test_app_key.pem"),
    );
    for (name, flags) in [("aes.pfx", &[][..]), ("legacy.pfx", &["-legacy"][..])] {
        let pfx = work.export(name, Some(&cert), Some(&key), "", flags);
        let credential = read_pfx(&pfx, "").unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(credential.certificate_der, test_cert_der(), "{name}");
    }
}

#[test]
fn ca_certificates_in_the_bag_are_not_taken_for_the_app_certificate() {
    let work = Workdir::new();
    let (ca_cert, _) = work.self_signed("issuing-ca", &["-newkey", "rsa:2048"]);
    let (cert, key) = (
        data_path("test_app_cert.pem"),
        data_path("test_app_key.pem"),
    );
    let pfx = work.export(
        "chain.pfx",
        Some(&cert),
        Some(&key),
        PASSWORD,
        &["-certfile", path_str(&ca_cert)],
    );
    let credential = read_pfx(&pfx, PASSWORD).expect("reads");
    assert_eq!(credential.certificate_der, test_cert_der());

    // openssl writes the leaf first; the choice must not depend on that order.
    let ca_der =
        first_certificate_der(&std::fs::read_to_string(&ca_cert).expect("ca")).expect("ca");
    let leaf_der = test_cert_der();
    let chosen = matching_certificate(&test_key_pkcs8_der(), &[&ca_der, &leaf_der]).expect("match");
    assert_eq!(chosen, leaf_der.as_slice());
    let message = matching_certificate(&test_key_pkcs8_der(), &[&ca_der]).expect_err("no match");
    assert!(message.contains("none of the 1 certificate"), "{message}");
}

#[test]
fn missing_key_missing_certificate_and_non_rsa_keys_are_named() {
    let work = Workdir::new();
    let (cert, key) = (
        data_path("test_app_cert.pem"),
        data_path("test_app_key.pem"),
    );
    let only_cert = work.export("cert-only.pfx", Some(&cert), None, PASSWORD, &[]);
    assert!(read_error(&only_cert, PASSWORD).contains("no private key"));

    let only_key = work.export("key-only.pfx", None, Some(&key), PASSWORD, &[]);
    assert!(read_error(&only_key, PASSWORD).contains("no certificate"));

    let (ec_cert, ec_key) = work.self_signed(
        "ec-app",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let ec = work.export("ec.pfx", Some(&ec_cert), Some(&ec_key), PASSWORD, &[]);
    let message = read_error(&ec, PASSWORD);
    assert!(
        message.contains("an EC key") && message.contains("not RSA"),
        "{message}"
    );
}

#[test]
fn garbage_and_truncated_files_are_errors_not_panics() {
    let work = Workdir::new();
    let (cert, key) = (
        data_path("test_app_cert.pem"),
        data_path("test_app_key.pem"),
    );
    let pfx = work.export("aes.pfx", Some(&cert), Some(&key), PASSWORD, &[]);
    assert!(read_error(b"not a pfx at all", PASSWORD).contains("not a readable PFX"));
    for cut in [0, 1, 16, pfx.len() / 2, pfx.len() - 1] {
        read_error(pfx.get(..cut).expect("prefix"), PASSWORD);
    }
}

#[test]
fn password_file_text_loses_one_newline_and_a_bom() {
    let cases = [
        ("secret\n", "secret"),
        ("secret\r\n", "secret"),
        ("secret\n\n", "secret\n"),
        ("secret", "secret"),
        ("\u{feff}secret\r\n", "secret"),
        (" secret \n", " secret "),
        ("\n", ""),
        ("", ""),
    ];
    for (file_text, password) in cases {
        assert_eq!(
            password_from_file_text(file_text),
            password,
            "{file_text:?}"
        );
    }
}

#[test]
fn config_loads_a_pfx_with_its_password_file() {
    let work = Workdir::new();
    let (cert, key) = (
        data_path("test_app_cert.pem"),
        data_path("test_app_key.pem"),
    );
    work.export("app.pfx", Some(&cert), Some(&key), PASSWORD, &["-legacy"]);
    std::fs::write(work.path("pfx-password"), format!("{PASSWORD}\r\n")).expect("password");
    std::fs::write(
        work.path("writeback.toml"),
        "[cloud]\ntenant_id = \"t\"\nclient_id = \"c\"\n\
         certificate_pfx_file = \"app.pfx\"\ncertificate_pfx_password_file = \"pfx-password\"\n\
         certificate_algorithm = \"PS256\"\n",
    )
    .expect("config");
    let mut config = CloudConfig::load(&work.path("writeback.toml")).expect("config loads");
    match config.load_credential().expect("credential") {
        Credential::Certificate {
            certificate_der,
            private_key_pem,
            algorithm,
        } => {
            assert_eq!(certificate_der, test_cert_der());
            assert!(private_key_pem
                .expose()
                .starts_with("-----BEGIN PRIVATE KEY-----\n"));
            assert_eq!(algorithm, CertificateAlgorithm::PS256);
        }
        other => panic!("{other:?}"),
    }

    std::fs::write(work.path("pfx-password"), "not it\n").expect("password");
    match config.load_credential() {
        Err(CloudError::Certificate(message)) => {
            assert!(message.contains("wrong password"), "{message}");
            assert!(message.contains("app.pfx"), "{message}");
            assert!(!message.contains("not it"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    config.certificate_pfx_password_file = Some(work.path("missing-password"));
    match config.load_credential() {
        Err(CloudError::Config(message)) => assert!(message.contains("missing-password")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn debug_output_hides_the_key() {
    let credential = PfxCredential {
        certificate_der: vec![0x30, 0x01],
        private_key_pem: Secret::new("-----BEGIN PRIVATE KEY-----hunter2"),
    };
    let text = format!("{credential:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("redacted"), "{text}");
}
