//! `--database-url` naming several servers: `mysql://user:pass@host1:3306,host2:3307/db?opts`,
//! the host-list form MySQL Connector/J and libmysql-based tools accept.
//! Each server gets the same account, database and options.

/// The single-server URLs a `--database-url` names, in its order: one
/// (the URL itself, unchanged) unless its host part is a comma-separated
/// list of `host[:port]` (IPv6 hosts in brackets).
pub fn server_urls(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return vec![url.to_string()];
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    if !hosts.contains(',') {
        return vec![url.to_string()];
    }
    hosts
        .split(',')
        .map(|host| match userinfo {
            Some(userinfo) => format!("{scheme}://{userinfo}@{}{tail}", host.trim()),
            None => format!("{scheme}://{}{tail}", host.trim()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::server_urls;

    #[test]
    fn a_host_list_gives_one_url_per_server() {
        assert_eq!(
            server_urls("mysql://u:p@a:3306,b:3307,[::1]:3308/db?prefer_socket=false"),
            [
                "mysql://u:p@a:3306/db?prefer_socket=false",
                "mysql://u:p@b:3307/db?prefer_socket=false",
                "mysql://u:p@[::1]:3308/db?prefer_socket=false",
            ]
        );
        assert_eq!(
            server_urls("mysql://a,b/db"),
            ["mysql://a/db", "mysql://b/db"]
        );
        // A comma in the password is not a host separator.
        assert_eq!(server_urls("mysql://u:p,q@a/db"), ["mysql://u:p,q@a/db"]);
        assert_eq!(server_urls("mysql://u:p@a:1/db"), ["mysql://u:p@a:1/db"]);
        // An empty host stays empty: the URL check refuses it.
        assert_eq!(
            server_urls("mysql://a,/db"),
            ["mysql://a/db", "mysql:///db"]
        );
    }
}
