//! `server.N` lines: the ensemble membership, in ZooKeeper's syntax
//! (`QuorumPeer.QuorumServer`):
//!
//! ```text
//! server.N = host:peerPort:electionPort[:participant|observer][|more addresses][;[clientHost:]clientPort]
//! ```
//!
//! IPv6 hosts are written in brackets (`[::1]:2888:3888`). Like Java's
//! `String.split`, empty trailing fields are dropped, so `host:2888:3888:` and a
//! trailing `;` are accepted as ZooKeeper accepts them.

/// One member of the ensemble as written in `server.N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// Host name or IP literal (IPv6 without brackets), not resolved here.
    pub host: String,
    /// Port followers use to connect to the leader (quorum traffic).
    pub peer_port: u16,
    /// Port for leader election.
    pub election_port: u16,
    /// `:observer` — a non-voting member.
    pub observer: bool,
    /// Optional client address after `;`: host (`0.0.0.0` when only a port is
    /// given) and port.
    pub client_addr: Option<(String, u16)>,
}

pub(crate) const FORMAT: &str =
    "expected host:peerPort:electionPort[:participant|observer][;[clientHost:]clientPort]";

/// Java's `String.split` for a literal separator: no match gives the whole
/// string; otherwise trailing empty pieces are dropped.
pub(crate) fn java_split(s: &str, sep: char) -> Vec<&str> {
    if !s.contains(sep) {
        return vec![s];
    }
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

/// `ConfigUtils.getHostAndPort`: `[v6]:a:b` or `host:a:b`, split on colons.
fn host_and_ports(s: &str) -> Result<Vec<String>, String> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('[') {
        let close = inner
            .find(']')
            .ok_or_else(|| format!("'{s}' starts with '[' but has no matching ']'"))?;
        let host = &inner[..close];
        let rest = &inner[close + 1..];
        if rest.is_empty() {
            return Ok(vec![host.to_owned()]);
        }
        let ports = rest
            .strip_prefix(':')
            .ok_or_else(|| format!("'{s}': expected ':' after ']'"))?;
        if ports.is_empty() {
            return Err(format!("'{s}' doesn't have a port after colon"));
        }
        let mut parts = vec![host.to_owned()];
        parts.extend(
            java_split(ports, ':')
                .into_iter()
                .map(|p| p.trim().to_owned()),
        );
        return Ok(parts);
    }
    Ok(java_split(s, ':')
        .into_iter()
        .map(|p| p.trim().to_owned())
        .collect())
}

fn port(text: &str, what: &str) -> Result<u16, String> {
    text.parse::<u16>()
        .map_err(|_| format!("invalid {what} '{text}': expected a port number (0-65535)"))
}

/// Parses the value of a `server.<id>` line as a reconfig request carries it
/// (`host:peerPort:electionPort[:role][;[clientHost:]clientPort]`).
pub fn parse_server_spec(id: u64, value: &str) -> Result<ServerSpec, String> {
    parse_server(id, value, false).map(|(spec, _)| spec)
}

/// Parses the value of `server.<id>`. Returns the spec and, when several
/// `|`-separated addresses are given, how many were dropped (only the first is
/// kept).
pub(crate) fn parse_server(
    id: u64,
    value: &str,
    multi_address_enabled: bool,
) -> Result<(ServerSpec, usize), String> {
    let wrong = || format!("invalid value '{value}': {FORMAT}");
    let server_client = java_split(value, ';');
    if server_client.len() > 2 {
        return Err(wrong());
    }
    let client_addr = match server_client.get(1) {
        None => None,
        Some(client) => {
            let parts = host_and_ports(client)?;
            let (host, port_text) = match parts.as_slice() {
                [p] => ("0.0.0.0".to_owned(), p.as_str()),
                [h, p] => (h.clone(), p.as_str()),
                _ => return Err(wrong()),
            };
            if host.is_empty() {
                return Err(wrong());
            }
            Some((host, port(port_text, "client port")?))
        }
    };
    let addresses = java_split(server_client[0], '|');
    if addresses.len() > 1 && !multi_address_enabled {
        return Err(format!(
            "multiple addresses given for server {id} but multiAddress.enabled is not true"
        ));
    }
    let mut first: Option<ServerSpec> = None;
    for address in &addresses {
        let parts = host_and_ports(address)?;
        if parts.len() < 3 || parts.len() > 4 || parts[0].is_empty() {
            return Err(wrong());
        }
        let peer_port = port(&parts[1], "peer port")?;
        let election_port = port(&parts[2], "election port")?;
        if peer_port == election_port {
            return Err(format!(
                "peer port and election port must be different (both are {peer_port})"
            ));
        }
        let observer = match parts.get(3).map(|t| t.to_ascii_lowercase()) {
            None => None,
            Some(t) if t == "observer" => Some(true),
            Some(t) if t == "participant" => Some(false),
            Some(_) => {
                return Err(format!(
                    "unrecognised peer type '{}': expected participant or observer",
                    parts[3]
                ))
            }
        };
        match &mut first {
            None => {
                first = Some(ServerSpec {
                    host: parts[0].clone(),
                    peer_port,
                    election_port,
                    observer: observer.unwrap_or(false),
                    client_addr: client_addr.clone(),
                })
            }
            Some(spec) => {
                if observer.is_some_and(|o| o != spec.observer) {
                    return Err(
                        "multiple addresses of one server must have the same role".to_owned()
                    );
                }
            }
        }
    }
    first.map(|s| (s, addresses.len() - 1)).ok_or_else(wrong)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(host: &str, peer: u16, election: u16) -> ServerSpec {
        ServerSpec {
            host: host.to_owned(),
            peer_port: peer,
            election_port: election,
            observer: false,
            client_addr: None,
        }
    }

    fn ok(value: &str) -> ServerSpec {
        parse_server(1, value, false).unwrap().0
    }

    #[test]
    fn host_peer_port_election_port() {
        assert_eq!(ok("zoo1:2888:3888"), spec("zoo1", 2888, 3888));
    }

    #[test]
    fn role_suffix_is_case_insensitive() {
        assert!(ok("zoo1:2888:3888:OBSERVER").observer);
        assert!(!ok("zoo1:2888:3888:participant").observer);
    }

    #[test]
    fn client_port_alone_binds_wildcard() {
        assert_eq!(
            ok("zoo1:2888:3888;2181").client_addr,
            Some(("0.0.0.0".to_owned(), 2181))
        );
    }

    #[test]
    fn client_host_and_port() {
        let s = ok("zoo1:2888:3888:observer;10.0.0.1:2181");
        assert!(s.observer);
        assert_eq!(s.client_addr, Some(("10.0.0.1".to_owned(), 2181)));
    }

    #[test]
    fn ipv6_hosts_in_brackets() {
        let s = ok("[2001:db8::1]:2888:3888;[::1]:2181");
        assert_eq!(s.host, "2001:db8::1");
        assert_eq!(s.client_addr, Some(("::1".to_owned(), 2181)));
    }

    #[test]
    fn trailing_separators_are_dropped_like_java_split() {
        assert_eq!(ok("zoo1:2888:3888:"), spec("zoo1", 2888, 3888));
        assert_eq!(ok("zoo1:2888:3888;"), spec("zoo1", 2888, 3888));
    }

    #[test]
    fn missing_election_port_is_rejected() {
        assert!(parse_server(1, "zoo1:2888", false).is_err());
    }

    #[test]
    fn same_peer_and_election_port_is_rejected() {
        let e = parse_server(1, "zoo1:2888:2888", false).unwrap_err();
        assert!(e.contains("must be different"), "{e}");
    }

    #[test]
    fn unknown_role_is_rejected() {
        let e = parse_server(1, "zoo1:2888:3888:leader", false).unwrap_err();
        assert!(e.contains("unrecognised peer type 'leader'"), "{e}");
    }

    #[test]
    fn port_out_of_range_is_rejected() {
        let e = parse_server(1, "zoo1:70000:3888", false).unwrap_err();
        assert!(e.contains("invalid peer port '70000'"), "{e}");
    }

    #[test]
    fn too_many_semicolons_is_rejected() {
        assert!(parse_server(1, "zoo1:2888:3888;2181;2182", false).is_err());
    }

    #[test]
    fn multiple_addresses_need_multi_address_enabled() {
        let v = "a:2888:3888|b:2889:3889";
        assert!(parse_server(1, v, false).is_err());
        let (s, dropped) = parse_server(1, v, true).unwrap();
        assert_eq!((s, dropped), (spec("a", 2888, 3888), 1));
    }
}
