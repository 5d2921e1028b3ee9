//! Prometheus metrics on --metrics-listen: RPCs by method and code, pool and
//! transaction gauges, transaction ends, streamed rows, database errors by
//! errno — and no secrets or SQL in any of it.
mod common;

use std::time::Duration;

use common::*;
use sqlgate::api::{BeginRequest, CommitRequest, ExecuteRequest, database_client::DatabaseClient};
use tokio_stream::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happens() {
    let (_, url) = fresh_database().await;
    let port = free_port();
    let metrics_address = format!("127.0.0.1:{port}");
    let process = GatewayProcess::start(
        ["--database-url", &url, "--metrics-listen", &metrics_address],
        &[],
    );
    let address = process.address.clone();
    let mut client = DatabaseClient::connect(format!("http://{address}"))
        .await
        .unwrap();

    execute(&mut client, "CREATE TABLE t (id INT PRIMARY KEY)", vec![])
        .await
        .unwrap();
    execute(&mut client, "INSERT INTO t VALUES (1)", vec![])
        .await
        .unwrap();
    let secret = "no_such_table_secret_name";
    execute(&mut client, &format!("SELECT * FROM {secret}"), vec![])
        .await
        .unwrap_err();
    let tx = client
        .begin(BeginRequest::default())
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    client
        .commit(CommitRequest {
            transaction_id: tx.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut stream = client
        .execute_stream(ExecuteRequest {
            sql: "SELECT seq FROM seq_1_to_1000".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while stream.next().await.is_some() {}

    // Counters are visible at once; gauges within their refresh interval.
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(port).unwrap_or_default();
        if text.contains("sqlgate_open_transactions") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ok_executes = sample(
        &text,
        "sqlgate_rpc_requests_total{method=\"Execute\",code=\"Ok\"}",
    );
    assert_eq!(ok_executes, Some(2.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "sqlgate_rpc_requests_total{method=\"Execute\",code=\"NotFound\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "sqlgate_database_errors_total{errno=\"1146\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "sqlgate_transactions_ended_total{reason=\"committed\"}"
        ),
        Some(1.0)
    );
    assert_eq!(sample(&text, "sqlgate_streamed_rows_total"), Some(1000.0));
    assert!(sample(&text, "sqlgate_streamed_bytes_total").unwrap() > 0.0);
    assert!(
        text.contains("sqlgate_rpc_duration_seconds_bucket"),
        "histogram"
    );
    assert!(text.contains("sqlgate_pool_connections{state=\"idle\"}"));
    assert_eq!(sample(&text, "sqlgate_open_transactions"), Some(0.0));
    assert!(
        !text.contains(secret) && !text.contains(&tx),
        "no SQL or ids in metrics"
    );

    assert_eq!(process.stop().await, Some(0));
}
