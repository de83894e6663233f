//! UDP cannot carry a token: datagrams are accepted only from the networks of `--udp-allow`
//! (default: loopback and the private ranges). The rest are dropped, counted
//! (`pitwall_udp_datagrams_denied_total`) and logged at a bounded rate.

use ipnet::IpNet;
use std::net::IpAddr;

/// Loopback and the private ranges: 127.0.0.0/8, ::1, 10.0.0.0/8, 172.16.0.0/12,
/// 192.168.0.0/16, fc00::/7.
pub fn default_networks() -> Vec<IpNet> {
    [
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    ]
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect()
}

/// The networks UDP datagrams are accepted from.
#[derive(Debug, Clone)]
pub struct UdpAllow {
    nets: Vec<IpNet>,
}

impl UdpAllow {
    pub fn new(nets: &[IpNet]) -> UdpAllow {
        UdpAllow {
            nets: nets.to_vec(),
        }
    }

    /// Whether a datagram from `ip` is accepted (an IPv4 address seen as IPv6 on a dual-stack
    /// socket, `::ffff:a.b.c.d`, is checked as IPv4).
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }
}

/// `--udp-allow` items: CIDRs, or single addresses (a /32 or /128).
pub fn parse_network(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not a network like 10.0.0.0/8 or an address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_and_loopback_by_default() {
        let a = UdpAllow::new(&default_networks());
        for ok in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.1",
            "192.168.1.20",
            "::1",
            "fd00::5",
            "::ffff:192.168.1.2",
        ] {
            assert!(a.allows(ok.parse().unwrap()), "{ok}");
        }
        for no in ["8.8.8.8", "172.32.0.1", "2001:db8::1", "::ffff:1.1.1.1"] {
            assert!(!a.allows(no.parse().unwrap()), "{no}");
        }
        assert_eq!(
            parse_network("10.0.0.7").unwrap().to_string(),
            "10.0.0.7/32"
        );
        assert!(parse_network("10.0.0.0/33").is_err());
    }
}
