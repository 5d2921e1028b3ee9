mod common;

use common::*;
use sqlgate::api::value::Kind;

#[tokio::test]
async fn execute_select_through_the_gateway() {
    let gateway = TestGateway::start().await;
    let mut client = gateway.client.clone();
    let response = execute(
        &mut client,
        "SELECT 1 + ? AS two, 'x' AS s, NULL AS n",
        vec![int(1)],
    )
    .await
    .unwrap();
    assert_eq!(response.columns[0].name, "two");
    assert_eq!(response.rows.len(), 1);
    assert_eq!(response.rows[0].values[0].kind, Some(Kind::Int64Value(2)));
    assert_eq!(
        response.rows[0].values[1].kind,
        Some(Kind::StringValue("x".into()))
    );
    assert_eq!(response.rows[0].values[2].kind, Some(Kind::NullValue(0)));
    gateway.shut_down().await;
}
