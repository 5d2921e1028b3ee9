//! Many clients at once: 64 concurrent clients move money between a few hot
//! accounts in 10,000 random transfers, retrying the whole transaction on
//! ABORTED (as a client should), and not a cent appears or disappears;
//! deadlock victims really lose their transaction; read-modify-write with
//! SELECT ... FOR UPDATE loses no update.
mod common;

use common::*;
use sqlgate::api::{
    CommitRequest, ExecuteRequest, RollbackRequest, TransactionOptions,
    database_client::DatabaseClient, value::Kind,
};
use tonic::{Code, Status, transport::Channel};

const CLIENTS: i64 = 64;
const TRANSFERS_PER_CLIENT: i64 = 157; // 64 × 157 = 10,048
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
                ..Default::default()
            })
            .await?;
        Ok(())
    }
    .await;
    if let Err(status) = &outcome {
        if error_info(status).1.get("errno").map(String::as_str) == Some("1213") {
            // A deadlock victim's transaction is gone, not just its statement.
            let after = client
                .execute(ExecuteRequest {
                    sql: "SELECT 1".into(),
                    transaction_id: tx.clone(),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert_eq!(after.code(), Code::Aborted);
            assert_eq!(error_info(&after).0, "TRANSACTION_ABORTED");
        }
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
                if status.code() == Code::ResourceExhausted {
                    // Back off, as the README tells clients to.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
            Err(status) => panic!("unexpected failure: {status:?}"),
        }
    }
}

/// A small deterministic random generator (Knuth's MMIX LCG): reproducible
/// runs without a dependency.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
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
            let mut random = Lcg(client_number as u64 + 1);
            for _ in 0..TRANSFERS_PER_CLIENT {
                // Random pairs in both directions, so lock orders cross and
                // deadlocks happen.
                let from = random.below(ACCOUNTS as u64) as i64 + 1;
                let offset = 1 + random.below(ACCOUNTS as u64 - 1) as i64;
                let to = (from - 1 + offset) % ACCOUNTS + 1;
                assert_ne!(from, to);
                let amount = 1 + random.below(20) as i64;
                retries += transfer_with_retry(&mut client, from, to, amount).await;
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
    // Rows matched (--found-rows), though none changed.
    assert_eq!(done.rows_affected, ACCOUNTS as u64);
    let count = execute(&mut client, "SELECT COUNT(*) FROM accounts", vec![])
        .await
        .unwrap();
    assert_eq!(
        count.rows[0].values[0].kind,
        Some(Kind::Int64Value(ACCOUNTS))
    );
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_read_modify_write_loses_no_update() {
    const INCREMENTS: i64 = 20;
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE counter (id INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB")
        .await;
    gateway
        .direct_exec("INSERT INTO counter VALUES (1, 0)")
        .await;
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let mut client = gateway.new_client().await;
        workers.push(tokio::spawn(async move {
            for _ in 0..INCREMENTS {
                loop {
                    match increment(&mut client).await {
                        Ok(()) => break,
                        Err(s) if matches!(s.code(), Code::Aborted | Code::ResourceExhausted) => {}
                        Err(s) => panic!("unexpected failure: {s:?}"),
                    }
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let total = gateway.direct_i64("SELECT n FROM counter").await;
    assert_eq!(total, Some(CLIENTS * INCREMENTS), "updates were lost");
}

/// Reads the counter with FOR UPDATE, then writes the value read plus one.
async fn increment(client: &mut DatabaseClient<Channel>) -> Result<(), Status> {
    let read = client
        .execute(ExecuteRequest {
            sql: "SELECT n FROM counter WHERE id = 1 FOR UPDATE".into(),
            begin: Some(TransactionOptions::default()),
            ..Default::default()
        })
        .await?
        .into_inner();
    let Some(Kind::Int64Value(n)) = read.rows[0].values[0].kind else {
        panic!("counter is an integer");
    };
    let tx = read.transaction_id;
    let write = client
        .execute(ExecuteRequest {
            sql: "UPDATE counter SET n = ? WHERE id = 1".into(),
            params: vec![int(n + 1)],
            transaction_id: tx.clone(),
            ..Default::default()
        })
        .await;
    match write {
        Ok(_) => client
            .commit(CommitRequest {
                transaction_id: tx,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        Err(status) => {
            client
                .rollback(RollbackRequest { transaction_id: tx })
                .await?;
            Err(status)
        }
    }
}
