//! Accounts on the private database server for the principals of the token file.
/// The private server's accounts of principals, as a mapping.
pub(super) fn mapping(
    accounts: Vec<crate::embedded::PrincipalAccount>,
) -> impl Iterator<Item = (String, crate::database::Credentials)> {
    accounts.into_iter().map(|account| {
        let credentials = crate::database::Credentials {
            user: account.user,
            password: Some(account.password),
        };
        (account.principal, credentials)
    })
}

/// Makes accounts on the private server for the `principals` of a reloaded
/// token file that `map` does not map yet, and maps them. On failure they
/// use the shared accounts until the next start, which makes theirs.
pub(super) async fn add_principal_accounts(
    maker: &crate::embedded::AccountMaker,
    map: &crate::accounts::AccountMap,
    principals: Vec<crate::auth::Principal>,
) {
    let new: Vec<(String, bool)> = principals
        .iter()
        .filter(|p| map.credentials_of(&p.name).is_none())
        .map(|p| (p.name.to_string(), p.role == crate::auth::Role::ReadOnly))
        .collect();
    if new.is_empty() {
        return;
    }
    match maker.add(&new).await {
        Ok(accounts) => {
            tracing::info!(
                principals = accounts.len(),
                "made private-server accounts for principals new to the token file"
            );
            map.add(mapping(accounts));
        }
        Err(e) => tracing::error!(
            error = %e,
            "could not make private-server accounts for principals new to the token file: they use the shared accounts until the next start"
        ),
    }
}
