//! PFX client certificates against the in-process tenant emulator: the app certificate the
//! emulator registered is exported to PFX with `openssl` (AES and legacy ciphers) and the token
//! endpoint must accept assertions signed from it with both algorithms.
// Test code: a failed step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::path::{Path, PathBuf};
use std::process::Command;
use tenant_emulator::{EmulatorConfig, RunningEmulator};
use writeback_cloud::{CloudConfig, CloudError, CloudReaders, Credential};

const PASSWORD: &str = "Export-Pa55 word";

fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// `(x5t, x5t#S256)` as openssl computes them: base64url of the DER's SHA-1 / SHA-256.
fn openssl_thumbprints(cert: &Path) -> (String, String) {
    let fingerprint = |digest: &str| {
        let text = openssl(&[
            "x509",
            "-in",
            path_str(cert),
            "-noout",
            "-fingerprint",
            digest,
        ]);
        let text = String::from_utf8(text).expect("ascii");
        let hex = text
            .trim()
            .rsplit('=')
            .next()
            .expect("fingerprint")
            .replace(':', "");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        URL_SAFE_NO_PAD.encode(bytes)
    };
    (fingerprint("-sha1"), fingerprint("-sha256"))
}

fn our_thumbprints(credential: &Credential) -> (String, String) {
    use sha2::Digest;
    match credential {
        Credential::Certificate {
            certificate_der, ..
        } => (
            URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(certificate_der)),
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(certificate_der)),
        ),
        other => panic!("{other:?}"),
    }
}

struct Setup {
    emulator: RunningEmulator,
    dir: PathBuf,
}

impl Setup {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("wb-cloud-pfx-emu-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let emulator = RunningEmulator::start(EmulatorConfig::new(dir.join("state")))
            .await
            .expect("emulator starts");
        Self { emulator, dir }
    }

    /// Exports the emulator's registered app certificate and key to `name`.
    fn export(&self, name: &str, flags: &[&str]) -> PathBuf {
        let (cert, key) = self.emulator.client_cert_paths();
        let out = self.dir.join(name);
        let passout = format!("pass:{PASSWORD}");
        let mut args = vec![
            "pkcs12",
            "-export",
            "-in",
            path_str(&cert),
            "-inkey",
            path_str(&key),
            "-out",
            path_str(&out),
            "-passout",
            &passout,
        ];
        args.extend(flags);
        openssl(&args);
        out
    }

    fn config(&self, pfx: &Path, password_file: &Path, algorithm: &str) -> CloudConfig {
        let base = self.emulator.base_url();
        let text = format!(
            "[cloud]\ntenant_id = \"{}\"\nclient_id = \"{}\"\n\
             certificate_pfx_file = \"{}\"\ncertificate_pfx_password_file = \"{}\"\n\
             certificate_algorithm = \"{algorithm}\"\n\
             login_url = \"{base}\"\ngraph_url = \"{base}\"\nexchange_url = \"{base}\"\n\
             ca_file = \"{}\"\nretry_base_delay_ms = 20\nretry_max_delay_secs = 1\n\
             max_retry_wait_secs = 5\n",
            self.emulator.tenant_id(),
            self.emulator.client_id(),
            pfx.display(),
            password_file.display(),
            self.emulator.ca_cert_path().display(),
        );
        let path = self.dir.join("writeback.toml");
        std::fs::write(&path, text).expect("config");
        CloudConfig::load(&path).expect("config loads")
    }

    async fn stop(self) {
        self.emulator.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn pfx_certificates_get_tokens_with_both_algorithms() {
    let setup = Setup::start().await;
    let password_file = setup.dir.join("pfx-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password");
    let (registered_cert, _) = setup.emulator.client_cert_paths();
    let expected = openssl_thumbprints(&registered_cert);
    for (name, flags) in [("aes.pfx", &[][..]), ("legacy.pfx", &["-legacy"][..])] {
        let pfx = setup.export(name, flags);
        for algorithm in ["RS256", "PS256"] {
            let config = setup.config(&pfx, &password_file, algorithm);
            let credential = config.load_credential().expect("credential");
            assert_eq!(our_thumbprints(&credential), expected, "{name}");
            let readers = CloudReaders::from_config(&config).expect("readers");
            let token = readers
                .tokens
                .token(&setup.emulator.base_url())
                .await
                .unwrap_or_else(|e| panic!("{name} {algorithm}: {e}"));
            assert!(!token.expose().is_empty(), "{name} {algorithm}");
        }
    }
    setup.stop().await;
}

#[tokio::test]
async fn a_wrong_pfx_password_fails_before_anything_is_sent() {
    let setup = Setup::start().await;
    let password_file = setup.dir.join("pfx-password");
    std::fs::write(&password_file, "not the export password\n").expect("password");
    for (name, flags) in [("aes.pfx", &[][..]), ("legacy.pfx", &["-legacy"][..])] {
        let pfx = setup.export(name, flags);
        let config = setup.config(&pfx, &password_file, "RS256");
        match CloudReaders::from_config(&config) {
            Err(CloudError::Certificate(message)) => {
                assert!(message.contains("wrong password"), "{name}: {message}");
                assert!(message.contains(name), "{name}: {message}");
            }
            Err(other) => panic!("{name}: {other}"),
            Ok(_) => panic!("{name}: a wrong password was accepted"),
        }
    }
    setup.stop().await;
}
