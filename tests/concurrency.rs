//! Many clients at once: 64 concurrent clients move money between a few hot
//! accounts in transactions, retrying the whole transaction on ABORTED (as a
//! client should), and not a cent appears or disappears.
mod common;

use common::*;
use sqlgate::api::{
    CommitRequest, ExecuteRequest, RollbackRequest, TransactionOptions,
    database_client::DatabaseClient, value::Kind,
};
use tonic::{Code, Status, transport::Channel};

const CLIENTS: i64 = 64;
const TRANSFERS_PER_CLIENT: i64 = 15;
const ACCOUNTS: i64 = 8;
const INITIAL_BALANCE: i64 = 1_000;

/// One transfer in one transaction. The first statement begins it inline.
/// Rows are locked one at a time, `from` first, so that concurrent transfers
/// in opposite directions deadlock and the loser gets ABORTED.
async fn transfer(
    client: &mut DatabaseClient<Channel>,
    from: i64,
    to: i64,
    amount: i64,
) -> Result<(), Status> {
    let locked = client
        .execute(ExecuteRequest {
            sql: "SELECT balance FROM accounts WHERE id = ? FOR UPDATE".into(),
            params: vec![int(from)],
            begin: Some(TransactionOptions::default()),
            ..Default::default()
        })
        .await?
        .into_inner();
    let tx = locked.transaction_id;
    let outcome = async {
        client
            .execute(ExecuteRequest {
                sql: "SELECT balance FROM accounts WHERE id = ? FOR UPDATE".into(),
                params: vec![int(to)],
                transaction_id: tx.clone(),
                ..Default::default()
            })
            .await?;
        for (sql, id, delta) in [
            (
                "UPDATE accounts SET balance = balance + ? WHERE id = ?",
                from,
                -amount,
            ),
            (
                "UPDATE accounts SET balance = balance + ? WHERE id = ?",
                to,
                amount,
            ),
        ] {
            client
                .execute(ExecuteRequest {
                    sql: sql.into(),
                    params: vec![int(delta), int(id)],
                    transaction_id: tx.clone(),
                    ..Default::default()
                })
                .await?;
        }
        client
            .commit(CommitRequest {
                transaction_id: tx.clone(),
            })
            .await?;
        Ok(())
    }
    .await;
    if outcome.is_err() {
        // Idempotent: fine whether or not the transaction still exists.
        client
            .rollback(RollbackRequest { transaction_id: tx })
            .await?;
    }
    outcome
}

/// Retries a transfer until it commits, as the README tells clients to.
async fn transfer_with_retry(
    client: &mut DatabaseClient<Channel>,
    from: i64,
    to: i64,
    amount: i64,
) -> u32 {
    let mut retries = 0;
    loop {
        match transfer(client, from, to, amount).await {
            Ok(()) => return retries,
            Err(status) if matches!(status.code(), Code::Aborted | Code::ResourceExhausted) => {
                retries += 1;
                assert!(retries < 1_000, "a transfer never got through: {status:?}");
            }
            Err(status) => panic!("unexpected failure: {status:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers_keep_the_total() {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec(
            "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB",
        )
        .await;
    gateway
        .direct_exec(&format!(
            "INSERT INTO accounts SELECT seq, {INITIAL_BALANCE} FROM seq_1_to_{ACCOUNTS}"
        ))
        .await;

    let mut workers = Vec::new();
    for client_number in 0..CLIENTS {
        // Each client has its own channel, like separate processes.
        let mut client = gateway.new_client().await;
        workers.push(tokio::spawn(async move {
            let mut retries = 0;
            for i in 0..TRANSFERS_PER_CLIENT {
                // Deterministic but varied pairs, in both directions, so that
                // lock orders cross and deadlocks happen.
                let from = (client_number * 7 + i * 3) % ACCOUNTS + 1;
                let to = (from + (client_number + i) % (ACCOUNTS - 1)) % ACCOUNTS + 1;
                assert_ne!(from, to);
                retries += transfer_with_retry(&mut client, from, to, 1 + (i % 5)).await;
            }
            retries
        }));
    }
    let mut total_retries = 0;
    for worker in workers {
        total_retries += worker.await.expect("worker finished");
    }

    let total = gateway
        .direct_i64("SELECT SUM(balance) FROM accounts")
        .await;
    assert_eq!(
        total,
        Some(ACCOUNTS * INITIAL_BALANCE),
        "money was created or lost"
    );
    // Every transfer moved money: the balances changed.
    let untouched = gateway
        .direct_i64(&format!(
            "SELECT COUNT(*) FROM accounts WHERE balance = {INITIAL_BALANCE}"
        ))
        .await;
    assert!(untouched < Some(ACCOUNTS));
    eprintln!(
        "{} transfers, {total_retries} retries",
        CLIENTS * TRANSFERS_PER_CLIENT
    );

    // Nothing is left open: a direct update of every row goes through at once.
    let mut client = gateway.client.clone();
    let done = execute(&mut client, "UPDATE accounts SET balance = balance", vec![])
        .await
        .unwrap();
    assert_eq!(done.rows_affected, 0);
    let count = execute(&mut client, "SELECT COUNT(*) FROM accounts", vec![])
        .await
        .unwrap();
    assert_eq!(
        count.rows[0].values[0].kind,
        Some(Kind::Int64Value(ACCOUNTS))
    );
    gateway.shut_down().await;
}
