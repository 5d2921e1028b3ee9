//! ExecuteBatch atomicity (alone and inside a transaction), deadlocks,
//! read-only transactions and isolation levels.

use super::*;

fn statement(sql: &str, params: Vec<api::Value>) -> Statement {
    Statement {
        sql: sql.into(),
        params,
    }
}

#[tokio::test]
async fn execute_batch_is_all_or_nothing() {
    let gateway = TestGateway::start().await;
    accounts(&gateway).await;
    let mut client = gateway.client.clone();
    let ok = client
        .execute_batch(ExecuteBatchRequest {
            statements: vec![
                statement("UPDATE t SET v = v - 5 WHERE id = ?", vec![int(1)]),
                statement("UPDATE t SET v = v + 5 WHERE id = ?", vec![int(2)]),
                statement("SELECT SUM(v) FROM t", vec![]),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.results.len(), 3);
    assert_eq!(ok.results[0].rows_affected, 1);
    assert_eq!(
        ok.results[2].rows[0].values[0].kind,
        Some(Kind::DecimalValue("30".into()))
    );
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 1").await,
        Some(5)
    );

    let failed = client
        .execute_batch(ExecuteBatchRequest {
            statements: vec![
                statement("UPDATE t SET v = 0 WHERE id = 1", vec![]),
                statement("INSERT INTO t VALUES (2, 0)", vec![]),
                statement("UPDATE t SET v = 0 WHERE id = 2", vec![]),
            ],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::AlreadyExists);
    let (reason, metadata) = error_info(&failed);
    assert_eq!(reason, "MYSQL_ERROR");
    assert_eq!(metadata["statement_index"], "1");
    assert_eq!(metadata["errno"], "1062");
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 1").await,
        Some(5)
    );

    // A refused statement is found before anything runs.
    let refused = client
        .execute_batch(ExecuteBatchRequest {
            statements: vec![
                statement("UPDATE t SET v = 0 WHERE id = 1", vec![]),
                statement("COMMIT", vec![]),
            ],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(error_info(&refused).1["statement_index"], "1");
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 1").await,
        Some(5)
    );
}

#[tokio::test]
async fn execute_batch_inside_a_transaction_undoes_only_itself() {
    let gateway = TestGateway::start().await;
    accounts(&gateway).await;
    let mut client = gateway.client.clone();
    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "UPDATE t SET v = 100 WHERE id = 1", vec![])
        .await
        .unwrap();
    let failed = client
        .execute_batch(ExecuteBatchRequest {
            statements: vec![
                statement("UPDATE t SET v = 200 WHERE id = 2", vec![]),
                statement("SELECT * FROM missing_table", vec![]),
            ],
            transaction_id: tx.clone(),
            options: None,
            combine_inserts: false,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::NotFound);
    assert_eq!(error_info(&failed).1["statement_index"], "1");
    // The transaction is still open, with its own earlier work and without the batch's.
    let rows = execute_in(&gateway, &tx, "SELECT v FROM t ORDER BY id", vec![])
        .await
        .unwrap();
    let values: Vec<_> = rows.rows.iter().map(|r| r.values[0].kind.clone()).collect();
    assert_eq!(
        values,
        vec![Some(Kind::Int64Value(100)), Some(Kind::Int64Value(20))]
    );
    // A batch that succeeds inside it does not commit.
    client
        .execute_batch(ExecuteBatchRequest {
            statements: vec![statement("UPDATE t SET v = 300 WHERE id = 2", vec![])],
            transaction_id: tx.clone(),
            options: None,
            combine_inserts: false,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 2").await,
        Some(20)
    );
    commit(&gateway, &tx).await.unwrap();
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 2").await,
        Some(300)
    );
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 1").await,
        Some(100)
    );
}

#[tokio::test]
async fn deadlocks_abort_the_whole_transaction() {
    let gateway = TestGateway::start().await;
    accounts(&gateway).await;
    let a = begin(&gateway, None).await;
    let b = begin(&gateway, None).await;
    execute_in(&gateway, &a, "UPDATE t SET v = v + 1 WHERE id = 1", vec![])
        .await
        .unwrap();
    execute_in(&gateway, &b, "UPDATE t SET v = v + 1 WHERE id = 2", vec![])
        .await
        .unwrap();
    // Each now waits for the other's row: InnoDB picks a victim at once.
    let (ra, rb) = tokio::join!(
        execute_in(&gateway, &a, "UPDATE t SET v = v + 1 WHERE id = 2", vec![]),
        execute_in(&gateway, &b, "UPDATE t SET v = v + 1 WHERE id = 1", vec![]),
    );
    let (victim, survivor, status) = match (ra, rb) {
        (Err(status), Ok(_)) => (a, b, status),
        (Ok(_), Err(status)) => (b, a, status),
        other => panic!("expected exactly one deadlock victim, got {other:?}"),
    };
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(error_info(&status).1["errno"], "1213");
    assert_eq!(error_info(&status).1["transaction_open"], "false");
    // The victim is gone; the survivor commits.
    let later = execute_in(&gateway, &victim, "SELECT 1", vec![])
        .await
        .unwrap_err();
    assert_eq!(later.code(), Code::Aborted);
    assert_eq!(error_info(&later).0, "TRANSACTION_ABORTED");
    commit(&gateway, &survivor).await.unwrap();
    assert_eq!(gateway.direct_i64("SELECT SUM(v) FROM t").await, Some(32));
}

#[tokio::test]
async fn read_only_transactions_refuse_writes() {
    let gateway = TestGateway::start().await;
    accounts(&gateway).await;
    let tx = begin(
        &gateway,
        Some(TransactionOptions {
            read_only: true,
            ..Default::default()
        }),
    )
    .await;
    let status = execute_in(&gateway, &tx, "UPDATE t SET v = 0", vec![])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(error_info(&status).1["errno"], "1792");
    // The failed statement does not end the transaction.
    execute_in(&gateway, &tx, "SELECT * FROM t", vec![])
        .await
        .unwrap();
    commit(&gateway, &tx).await.unwrap();
    assert_eq!(gateway.direct_i64("SELECT SUM(v) FROM t").await, Some(30));
}

#[tokio::test]
async fn isolation_levels_behave_as_documented() {
    let gateway = TestGateway::start().await;
    accounts(&gateway).await;
    for (level, sees_new_commit) in [
        (api::IsolationLevel::RepeatableRead, false),
        (api::IsolationLevel::ReadCommitted, true),
    ] {
        let tx = begin(
            &gateway,
            Some(TransactionOptions {
                isolation: level as i32,
                ..Default::default()
            }),
        )
        .await;
        let read = || execute_in(&gateway, &tx, "SELECT v FROM t WHERE id = 1", vec![]);
        let before = read().await.unwrap().rows[0].values[0].kind.clone();
        gateway
            .direct_exec("UPDATE t SET v = v + 1 WHERE id = 1")
            .await;
        let after = read().await.unwrap().rows[0].values[0].kind.clone();
        assert_eq!(before != after, sees_new_commit, "{level:?}");
        commit(&gateway, &tx).await.unwrap();
    }
}
