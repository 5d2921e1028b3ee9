//! The seed scenario as a load for fleets: accounts, and transfers between
//! them whose calls go to whichever gateway (or proxy) a route picks next.
use sqlgate::api::{BeginRequest, CommitRequest, ExecuteRequest, database_client::DatabaseClient};
use tonic::{Code, transport::Channel};

use super::{execute, int};

/// Creates table `accounts` with `count` accounts (ids 1..=count) of
/// balance 1000.
pub async fn create_accounts(client: &mut DatabaseClient<Channel>, count: i64) {
    let create = "CREATE TABLE accounts (id INT PRIMARY KEY, balance INT NOT NULL)";
    execute(client, create, vec![]).await.unwrap();
    let fill = format!("INSERT INTO accounts SELECT seq, 1000 FROM seq_1_to_{count}");
    execute(client, &fill, vec![]).await.unwrap();
}

/// One of the two UPDATEs of a transfer, inside transaction `tx`.
pub fn move_balance(tx: &str, account: i64, delta: i64) -> ExecuteRequest {
    ExecuteRequest {
        sql: "UPDATE accounts SET balance = balance + ? WHERE id = ?".into(),
        params: vec![int(delta), int(account)],
        transaction_id: tx.into(),
        ..Default::default()
    }
}

/// Moves 1 from account `from` to account `to` in one transaction: Begin
/// through `calls[0]`, the two UPDATEs through `calls[1]` and `calls[2]`,
/// Commit through `calls[3]`.
pub async fn transfer(
    calls: [DatabaseClient<Channel>; 4],
    from: i64,
    to: i64,
) -> Result<(), tonic::Status> {
    let [mut begin, mut first, mut second, mut commit] = calls;
    let tx = begin
        .begin(BeginRequest::default())
        .await?
        .into_inner()
        .transaction_id;
    first.execute(move_balance(&tx, from, -1)).await?;
    second.execute(move_balance(&tx, to, 1)).await?;
    commit
        .commit(CommitRequest {
            transaction_id: tx,
            ..Default::default()
        })
        .await?;
    Ok(())
}

/// `workers` concurrent clients each make `transfers` transfers among
/// `accounts` accounts (created by [`create_accounts`]), every call of a
/// transaction sent through the next client of `route` in turn. Deadlock
/// victims (ABORTED) are rerun; any other failure fails the test. Returns
/// how many reruns there were.
pub async fn run_transfers(
    route: &[DatabaseClient<Channel>],
    workers: usize,
    transfers: usize,
    accounts: i64,
) -> usize {
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let route = route.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut reruns = 0;
            let mut call = worker;
            let mut next = || {
                call += 1;
                route[call % route.len()].clone()
            };
            for transfer_number in 0..transfers {
                let seed = (worker * 7919 + transfer_number * 104_729) as i64;
                let from = seed % accounts + 1;
                let to = (seed / accounts + 1) % accounts + 1;
                let to = if to == from { from % accounts + 1 } else { to };
                loop {
                    let calls = [next(), next(), next(), next()];
                    match transfer(calls, from, to).await {
                        Ok(()) => break,
                        Err(status) if status.code() == Code::Aborted => reruns += 1,
                        Err(status) => panic!("transfer failed: {status:?}"),
                    }
                }
            }
            reruns
        }));
    }
    let mut reruns = 0;
    for task in tasks {
        reruns += task.await.expect("a client panicked");
    }
    reruns
}
