//! `--database-url` naming several servers: `mysql://user:pass@host1:3306,host2:3307/db?opts`,
//! the host-list form MySQL Connector/J and libmysql-based tools accept.
//! Each server gets the same account, database and options.
//!
//! A server named by a DNS name stands for every address the name resolves
//! to (see `database::primary`): [`resolvable_host`] and [`with_address`].

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

/// The parts of a single-server URL: (before the host, the host, the port
/// text with its colon, after the authority).
fn split_host(url: &str) -> Option<(&str, &str, &str, &str)> {
    let scheme_end = url.find("://")? + 3;
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let hostport = &authority[host_start..];
    let host_end = if hostport.starts_with('[') {
        hostport.find(']')? + 1
    } else {
        hostport.find(':').unwrap_or(hostport.len())
    };
    let prefix_end = scheme_end + host_start;
    Some((
        &url[..prefix_end],
        &hostport[..host_end],
        &hostport[host_end..],
        &rest[authority_end..],
    ))
}

/// The DNS name and port of a single-server URL whose server may stand for
/// several addresses; `None` when it names an address (IPv4, `[IPv6]`), a
/// socket (`socket=`), no host, or when `tls` (the certificate names the
/// host, so the URL must keep it).
pub fn resolvable_host(url: &str, tls: bool) -> Option<(String, u16)> {
    let (_, host, port, tail) = split_host(url)?;
    if tls
        || host.is_empty()
        || host.starts_with('[')
        || host.parse::<std::net::IpAddr>().is_ok()
        || names_socket(tail)
    {
        return None;
    }
    let port = match port.strip_prefix(':') {
        Some(port) => port.parse().ok()?,
        None => 3306,
    };
    Some((host.to_string(), port))
}

/// True when the URL's query (in `tail`) has a `socket` parameter.
fn names_socket(tail: &str) -> bool {
    tail.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some("socket"))
    })
}

/// The single-server `url` with its host replaced by `address`.
pub fn with_address(url: &str, address: std::net::IpAddr) -> String {
    let Some((before, _, port, tail)) = split_host(url) else {
        return url.to_string();
    };
    match address {
        std::net::IpAddr::V4(v4) => format!("{before}{v4}{port}{tail}"),
        std::net::IpAddr::V6(v6) => format!("{before}[{v6}]{port}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{resolvable_host, server_urls, with_address};

    #[test]
    fn names_resolve_addresses_do_not() {
        assert_eq!(
            resolvable_host("mysql://u:p@db.example:3307/app?x=1", false),
            Some(("db.example".into(), 3307))
        );
        assert_eq!(
            resolvable_host("mysql://localhost/app", false),
            Some(("localhost".into(), 3306))
        );
        assert_eq!(
            resolvable_host("mysql://localhost:1/app?prefer_socket=false", false),
            Some(("localhost".into(), 1))
        );
        for fixed in [
            "mysql://u:p@127.0.0.1:3307/app",
            "mysql://u:p@[::1]:3307/app",
            "mysql://u:p@localhost/app?socket=/tmp/s",
            "mysql:///app",
        ] {
            assert_eq!(resolvable_host(fixed, false), None, "{fixed}");
        }
        assert_eq!(resolvable_host("mysql://db.example/app", true), None);
        let v4 = "127.0.0.2".parse().unwrap();
        let v6 = "::1".parse().unwrap();
        assert_eq!(
            with_address("mysql://u:p@db.example:3307/app?x=1", v4),
            "mysql://u:p@127.0.0.2:3307/app?x=1"
        );
        assert_eq!(
            with_address("mysql://u:p@db.example:3307/app", v6),
            "mysql://u:p@[::1]:3307/app"
        );
        assert_eq!(with_address("mysql://db.example", v4), "mysql://127.0.0.2");
    }

    /// With the machine's resolver: `localhost` stands for each of its
    /// loopback addresses (one or two, as /etc/hosts says).
    #[tokio::test]
    async fn localhost_resolves_to_loopback_addresses() {
        let addresses: Vec<_> = tokio::net::lookup_host(("localhost", 3306))
            .await
            .unwrap()
            .collect();
        assert!(!addresses.is_empty());
        for address in addresses {
            assert!(address.ip().is_loopback(), "{address}");
            let url = with_address("mysql://u:p@localhost:3306/app", address.ip());
            assert!(resolvable_host(&url, false).is_none(), "{url}");
        }
    }

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
