use super::*;
use std::time::UNIX_EPOCH;

#[test]
fn retry_after_accepts_whole_and_fractional_seconds() {
    let now = SystemTime::now();
    assert_eq!(parse_retry_after("10", now), Some(Duration::from_secs(10)));
    assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
    // The value in Microsoft's throttling sample.
    assert_eq!(
        parse_retry_after("2.128", now),
        Some(Duration::from_millis(2128))
    );
}

#[test]
fn retry_after_accepts_an_http_date() {
    let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480);
    // 2015-10-21 07:28:00 GMT is 1_445_412_480; 30 s later:
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
        Some(Duration::from_secs(30))
    );
    // A date in the past means "now".
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
        Some(Duration::ZERO)
    );
}

#[test]
fn retry_after_rejects_garbage_without_panicking() {
    let now = SystemTime::now();
    for bad in ["", "soon", "-1", "NaN", "inf", "1e400", "2.5s"] {
        assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
    }
}

#[test]
fn retry_after_header_is_read_from_the_map() {
    let mut headers = HeaderMap::new();
    assert_eq!(retry_after(&headers, SystemTime::now()), None);
    headers.insert(RETRY_AFTER, "1.5".parse().expect("header value"));
    assert_eq!(
        retry_after(&headers, SystemTime::now()),
        Some(Duration::from_millis(1500))
    );
}

#[test]
fn backoff_ceiling_doubles_and_is_capped() {
    let policy = RetryPolicy {
        max_total_wait: Duration::from_secs(600),
        base_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(60),
    };
    let ceilings: Vec<u128> = (1..=9)
        .map(|n| policy.backoff_ceiling(n).as_millis())
        .collect();
    assert_eq!(
        ceilings,
        [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]
    );
    assert_eq!(policy.backoff_ceiling(u32::MAX), Duration::from_secs(60));
}

#[test]
fn backoff_is_jittered_within_the_ceiling() {
    let policy = RetryPolicy {
        max_total_wait: Duration::from_secs(600),
        base_delay: Duration::from_millis(1000),
        max_delay: Duration::from_secs(60),
    };
    let samples: Vec<Duration> = (0..200).map(|_| policy.backoff(3)).collect();
    assert!(samples.iter().all(|d| *d <= Duration::from_secs(4)));
    let distinct: std::collections::HashSet<_> = samples.iter().collect();
    assert!(
        distinct.len() > 50,
        "full jitter spreads the waits: {}",
        distinct.len()
    );
}

#[test]
fn retryable_statuses() {
    for code in [429u16, 500, 502, 503, 504] {
        assert!(
            is_retryable_status(StatusCode::from_u16(code).expect("status")),
            "{code}"
        );
    }
    for code in [200u16, 400, 401, 403, 404, 409, 410, 501] {
        assert!(
            !is_retryable_status(StatusCode::from_u16(code).expect("status")),
            "{code}"
        );
    }
}

#[test]
fn endpoint_label_drops_the_query() {
    assert_eq!(
        endpoint_label(
            &Method::GET,
            "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=abc"
        ),
        "GET https://graph.microsoft.com/v1.0/users/delta"
    );
}

#[test]
fn extra_ca_file_must_hold_a_certificate() {
    let timeout = Duration::from_secs(5);
    match build_reqwest_client(Some(b"not a certificate"), timeout, timeout) {
        Err(CloudError::ClientSetup(message)) => assert!(message.contains("ca_file"), "{message}"),
        other => panic!("{other:?}"),
    }
    let pem = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/test_app_cert.pem"),
    )
    .expect("test cert");
    assert!(build_reqwest_client(Some(&pem), timeout, timeout).is_ok());
}

#[test]
fn the_status_label_is_a_class_with_throttling_apart() {
    let class = |code: u16| status_class(StatusCode::from_u16(code).ok());
    assert_eq!(class(200), "2xx");
    assert_eq!(class(204), "2xx");
    assert_eq!(class(302), "3xx");
    assert_eq!(class(404), "4xx");
    assert_eq!(class(429), "429");
    assert_eq!(class(503), "5xx");
    assert_eq!(class(101), "other");
    assert_eq!(status_class(None), "transport_error");
}
