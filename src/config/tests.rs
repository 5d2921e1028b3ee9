//! Tests of the command line: flags, defaults, environment, errors.
use super::*;

fn parse(args: &[&str]) -> Result<Config, String> {
    let mut all = vec!["sqlgate", "serve"];
    all.extend_from_slice(args);
    let cli = Cli::try_parse_from(all).map_err(|e| e.to_string())?;
    let Command::Serve(serve) = cli.command;
    serve.validate()
}

#[test]
fn defaults_are_valid_and_embedded() {
    let config = parse(&[]).unwrap();
    assert!(matches!(
        config.database.target,
        DatabaseTarget::Embedded { .. }
    ));
    assert_eq!(config.calls.max_result_bytes, 4 * 1024 * 1024);
    assert_eq!(config.calls.stream_batch_bytes, 64 * 1024);
    assert_eq!(config.transactions.max_lifetime, Duration::from_secs(300));
    assert_eq!(config.calls.stream_stall_timeout, Duration::from_secs(30));
}

#[test]
fn several_servers_in_the_database_url() {
    let config = parse(&[
        "--database-url",
        "mysql://u:p@a:3306,b:3307/db",
        "--primary-check-interval",
        "250ms",
    ])
    .unwrap();
    assert_eq!(
        config.database.replicas.primary_check_interval,
        Duration::from_millis(250)
    );
    assert!(matches!(config.database.target, DatabaseTarget::Url(_)));
    assert_eq!(
        config.request_ids.schema, "db",
        "the outcomes' default schema"
    );
    let problem = parse(&["--database-url", "mysql://u:p@a:3306,b:x/db"]).unwrap_err();
    assert!(problem.contains("not a valid MySQL URL"), "{problem}");
    let problem = parse(&[
        "--database-url",
        "mysql://u@a,b/db",
        "--primary-check-interval",
        "0s",
    ])
    .unwrap_err();
    assert!(
        problem.contains("--primary-check-interval must be greater than zero"),
        "{problem}"
    );
}

#[test]
fn human_durations_and_sizes() {
    let config = parse(&["--tx-idle-timeout", "1m 30s", "--max-result-bytes", "1KiB"]).unwrap();
    assert_eq!(config.transactions.idle_timeout, Duration::from_secs(90));
    assert_eq!(config.calls.max_result_bytes, 1024);
}

#[test]
fn bad_values_are_refused() {
    assert!(parse(&["--tx-idle-timeout", "soon"]).is_err());
    assert!(parse(&["--pool-max", "4", "--max-transactions", "4"]).is_err());
    assert!(
        parse(&[
            "--pool-min",
            "9",
            "--pool-max",
            "8",
            "--max-transactions",
            "2"
        ])
        .is_err()
    );
    assert!(parse(&["--database-url", "postgres://x"]).is_err());
    assert!(parse(&["--listen", "nowhere"]).is_err());
    assert!(parse(&["--listen", "0.0.0.0:50051"]).is_err());
    assert!(parse(&["--listen", "0.0.0.0:50051", "--insecure-no-auth"]).is_ok());
    assert!(parse(&["--listen", "0.0.0.0:50051", "--auth-tokens-file", "/x"]).is_ok());
    assert!(parse(&["--max-params", "0"]).is_err());
    assert!(parse(&["--stream-stall-timeout", "0s"]).is_err());
    assert!(parse(&["--max-connections", "0"]).is_err());
    assert!(parse(&["--max-concurrent-requests", "0"]).is_err());
}

#[test]
fn listen_takes_host_names() {
    let config = parse(&["--listen", "localhost:47321"]).unwrap();
    assert!(config.listen.ip().is_loopback(), "{}", config.listen);
    assert_eq!(config.listen.port(), 47321);
    let problem = parse(&["--listen", "no-such-host.invalid:1"]).unwrap_err();
    assert!(problem.contains("--listen"), "{problem}");
}

#[test]
fn enum_flags_list_their_values() {
    for (flag, value, values) in [
        ("--log-format", "xml", "[possible values: text, json]"),
        ("--session-reuse", "maybe", "[possible values: reads, off]"),
    ] {
        let error = Cli::try_parse_from(["sqlgate", "serve", flag, value]).unwrap_err();
        let line = usage_error_line(&error);
        assert!(line.contains(flag) && line.contains(value), "{line}");
        assert!(line.ends_with(values), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }
}

#[test]
fn a_url_without_a_database_is_refused() {
    let problem = parse(&["--database-url", "mysql://app:secret@db:3306"]).unwrap_err();
    assert!(problem.contains("names no database"), "{problem}");
    assert!(!problem.contains("secret"), "{problem}");
    assert!(parse(&["--database-url", "mysql://app@db:3306/"]).is_err());
    assert!(parse(&["--database-url", "mysql://app@db:3306/shop"]).is_ok());
}

#[test]
fn every_problem_is_reported_at_once() {
    let problems = parse(&[
        "--max-params",
        "0",
        "--statement-timeout",
        "0s",
        "--database-url",
        "postgres://x",
        "--statement-cache-size",
        "0",
    ])
    .unwrap_err();
    let lines: Vec<&str> = problems.lines().collect();
    assert_eq!(lines.len(), 4, "{problems}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("--statement-cache-size"))
    );
    assert!(lines.iter().any(|l| l.starts_with("--max-params")));
    assert!(lines.iter().any(|l| l.starts_with("--statement-timeout")));
    assert!(lines.iter().any(|l| l.starts_with("--database-url")));
}

#[test]
fn tls_without_peers_has_no_fleet() {
    let config = parse(&["--tls-cert", "/c.pem", "--tls-key", "/k.pem"]).unwrap();
    assert!(config.tls.is_some());
    assert!(config.fleet.is_none());
    let fleet = parse(&[
        "--tls-cert",
        "/c.pem",
        "--tls-key",
        "/k.pem",
        "--tls-client-ca",
        "/ca.pem",
        "--peers",
        "10.0.0.1:50051,10.0.0.2:50051",
    ])
    .unwrap()
    .fleet
    .expect("a fleet");
    let tls = fleet.tls.expect("peers over TLS");
    assert_eq!(tls.ca, std::path::PathBuf::from("/ca.pem"));
    assert!(
        tls.identity.is_some(),
        "mutual TLS: the gateway's own certificate"
    );
    let problems = parse(&[
        "--tls-cert",
        "/c.pem",
        "--tls-key",
        "/k.pem",
        "--peers",
        "a:1",
    ])
    .unwrap_err();
    assert!(problems.contains("--peer-tls-ca"), "{problems}");
}

#[test]
fn passwords_are_redacted() {
    assert_eq!(
        redact_url("mysql://app:s3cr@t@db:3306/shop?socket=/x"),
        "mysql://app:***@db:3306/shop?socket=/x"
    );
    assert_eq!(redact_url("mysql://app@db/shop"), "mysql://app@db/shop");
    assert_eq!(redact_url("mysql://db/shop"), "mysql://db/shop");
}
