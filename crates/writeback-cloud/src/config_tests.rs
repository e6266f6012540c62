use super::*;

const MINIMAL: &str = r#"
[cloud]
tenant_id = "contoso.onmicrosoft.com"
client_id = "97e0a5b7-d745-40b6-94fe-5f77d35c6e05"
client_secret_env = "WB_TEST_SECRET"
"#;

fn parse(text: &str) -> CloudConfig {
    CloudConfig::from_toml_document(text).expect("parses")
}

fn config_error(config: &CloudConfig) -> String {
    match config.validate() {
        Err(CloudError::Config(message)) => message,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn minimal_section_takes_documented_defaults() {
    let config = parse(MINIMAL);
    config.validate().expect("valid");
    assert_eq!(config.environment, CloudEnvironment::Worldwide);
    assert_eq!(config.certificate_algorithm, CertificateAlgorithm::RS256);
    assert_eq!(config.exchange_page_size, 1000);
    assert_eq!(config.watermark_overlap(), Duration::from_secs(600));
    assert_eq!(config.full_pass_interval(), Duration::from_secs(24 * 3600));
    assert_eq!(
        config.endpoints(),
        Endpoints {
            login: "https://login.microsoftonline.com".into(),
            graph: "https://graph.microsoft.com".into(),
            exchange: "https://outlook.office365.com".into(),
        }
    );
}

#[test]
fn national_cloud_presets_match_the_reference_table() {
    let cases = [
        (
            "gcc-high",
            "https://login.microsoftonline.us",
            "https://graph.microsoft.us",
            "https://outlook.office365.us",
        ),
        (
            "dod",
            "https://login.microsoftonline.us",
            "https://dod-graph.microsoft.us",
            "https://webmail.apps.mil",
        ),
        (
            "china",
            "https://login.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
            "https://partner.outlook.cn",
        ),
    ];
    for (name, login, graph, exchange) in cases {
        let config = parse(&format!("{MINIMAL}environment = \"{name}\"\n"));
        let endpoints = config.endpoints();
        assert_eq!(
            (
                endpoints.login.as_str(),
                endpoints.graph.as_str(),
                endpoints.exchange.as_str()
            ),
            (login, graph, exchange),
            "{name}"
        );
    }
}

#[test]
fn overrides_replace_presets_and_lose_trailing_slashes() {
    let config = parse(&format!(
        "{MINIMAL}environment = \"china\"\nlogin_url = \"http://127.0.0.1:8080/\"\n\
         graph_url = \"https://graph.example.test/\"\n"
    ));
    config.validate().expect("loopback http is allowed");
    let endpoints = config.endpoints();
    assert_eq!(endpoints.login, "http://127.0.0.1:8080");
    assert_eq!(endpoints.graph, "https://graph.example.test");
    assert_eq!(endpoints.exchange, "https://partner.outlook.cn");
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let config = parse(&format!(
        "{MINIMAL}exchange_url = \"http://outlook.example.test\"\n"
    ));
    assert!(config_error(&config).contains("exchange_url"));
}

#[test]
fn unknown_keys_and_bad_enum_values_are_rejected() {
    for extra in [
        "clientsecret = \"x\"\n",
        "environment = \"mars\"\n",
        "certificate_algorithm = \"ES256\"\n",
    ] {
        let result = CloudConfig::from_toml_document(&format!("{MINIMAL}{extra}"));
        assert!(
            matches!(result, Err(CloudError::Config(_))),
            "{extra}: {result:?}"
        );
    }
}

#[test]
fn missing_section_is_a_clear_error() {
    match CloudConfig::from_toml_document("[ad]\nurl = \"ldaps://dc\"\n") {
        Err(CloudError::Config(message)) => assert!(message.contains("[cloud]"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn credential_choice_is_validated() {
    let base = "[cloud]\ntenant_id = \"t\"\nclient_id = \"c\"\n";
    let none = parse(base);
    assert!(config_error(&none).contains("no credential"));

    let both = parse(&format!(
        "{base}client_secret_env = \"X\"\ncertificate_file = \"a.pem\"\nprivate_key_file = \"a.key\"\n"
    ));
    assert!(config_error(&both).contains("more than one credential"));

    let half = parse(&format!("{base}certificate_file = \"a.pem\"\n"));
    assert!(config_error(&half).contains("together"));

    let pfx = parse(&format!(
        "{base}certificate_pfx_file = \"a.pfx\"\ncertificate_pfx_password_file = \"pw\"\n"
    ));
    pfx.validate().expect("a PFX is a credential");
    let pfx_without_password = parse(&format!("{base}certificate_pfx_file = \"a.pfx\"\n"));
    pfx_without_password
        .validate()
        .expect("the password file is optional");
    let password_only = parse(&format!("{base}certificate_pfx_password_file = \"pw\"\n"));
    assert!(config_error(&password_only).contains("certificate_pfx_file is not"));
    let pfx_and_pem = parse(&format!(
        "{base}certificate_pfx_file = \"a.pfx\"\ncertificate_file = \"a.pem\"\nprivate_key_file = \"a.key\"\n"
    ));
    assert!(config_error(&pfx_and_pem).contains("more than one credential"));

    let cert = parse(&format!(
        "{base}certificate_file = \"a.pem\"\nprivate_key_file = \"a.key\"\ncertificate_algorithm = \"PS256\"\n"
    ));
    cert.validate().expect("valid");
    assert_eq!(cert.certificate_algorithm, CertificateAlgorithm::PS256);
}

#[test]
fn empty_ids_and_zero_page_size_are_rejected() {
    let empty_tenant = parse(&MINIMAL.replace("contoso.onmicrosoft.com", " "));
    assert!(config_error(&empty_tenant).contains("tenant_id"));
    let zero_page = parse(&format!("{MINIMAL}exchange_page_size = 0\n"));
    assert!(config_error(&zero_page).contains("exchange_page_size"));
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let mut config = parse(&format!("{MINIMAL}ca_file = \"certs/ca.pem\"\n"));
    config.client_secret_env = None;
    config.client_secret_file = Some(PathBuf::from("secret.txt"));
    config.certificate_file = Some(PathBuf::from("/abs/cert.pem"));
    config.resolve_paths(Path::new("/etc/writeback"));
    assert_eq!(
        config.ca_file,
        Some(PathBuf::from("/etc/writeback/certs/ca.pem"))
    );
    assert_eq!(
        config.client_secret_file,
        Some(PathBuf::from("/etc/writeback/secret.txt"))
    );
    assert_eq!(
        config.certificate_file,
        Some(PathBuf::from("/abs/cert.pem"))
    );
}

#[test]
fn load_reads_the_file_and_resolves_paths() {
    let dir = std::env::temp_dir().join(format!("wb-cloud-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("secret.txt"), "s3cr3t-value\r\n").expect("write secret");
    std::fs::write(
        dir.join("writeback.toml"),
        "[cloud]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_file = \"secret.txt\"\n",
    )
    .expect("write config");
    let config = CloudConfig::load(&dir.join("writeback.toml")).expect("loads");
    assert_eq!(config.client_secret_file, Some(dir.join("secret.txt")));
    match config.load_credential().expect("credential") {
        Credential::ClientSecret(secret) => assert_eq!(secret.expose(), "s3cr3t-value"),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn certificate_credential_loads_der_and_key() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut config = parse("[cloud]\ntenant_id = \"t\"\nclient_id = \"c\"\n");
    config.certificate_file = Some(PathBuf::from("test_app_cert.pem"));
    config.private_key_file = Some(PathBuf::from("test_app_key.pem"));
    config.resolve_paths(&data);
    match config.load_credential().expect("credential") {
        Credential::Certificate {
            certificate_der,
            private_key_pem,
            algorithm,
        } => {
            assert_eq!(
                certificate_der.first(),
                Some(&0x30),
                "DER starts with a SEQUENCE"
            );
            assert!(private_key_pem.expose().contains("PRIVATE KEY"));
            assert_eq!(algorithm, CertificateAlgorithm::RS256);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_secret_file_and_unset_env_are_clear_errors() {
    let mut config = parse(MINIMAL);
    config.client_secret_env = Some("WB_TEST_SURELY_UNSET_VARIABLE".into());
    match config.load_credential() {
        Err(CloudError::Config(message)) => {
            assert!(message.contains("WB_TEST_SURELY_UNSET_VARIABLE"))
        }
        other => panic!("{other:?}"),
    }
    config.client_secret_env = None;
    config.client_secret_file = Some(PathBuf::from("/nonexistent/secret"));
    match config.load_credential() {
        Err(CloudError::Config(message)) => assert!(message.contains("/nonexistent/secret")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn secrets_never_show_in_debug_output() {
    let secret = Secret::new("hunter2-very-secret");
    assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
    let credential = Credential::Certificate {
        certificate_der: vec![1, 2, 3],
        private_key_pem: Secret::new("-----BEGIN PRIVATE KEY-----hunter2"),
        algorithm: CertificateAlgorithm::PS256,
    };
    let text = format!("{credential:?} {:?}", Credential::ClientSecret(secret));
    assert!(!text.contains("hunter2"), "{text}");
}
