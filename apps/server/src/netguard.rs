//! Outbound requests to addresses users give us (Web Push endpoints, link
//! previews) must not reach the server's own network: a user who
//! registers `http://127.0.0.1:6379/` or a cloud metadata address as a
//! "push endpoint" would otherwise make the server talk to it (server-side
//! request forgery). Two checks, because either alone is not enough:
//! - [`check_url`] when the address is given (a clear 400) and again
//!   before each request (an IP literal never goes through DNS);
//! - [`GuardedResolver`], the HTTP client's resolver, drops private
//!   addresses from every lookup, so a name that resolves (or later
//!   re-resolves) to one cannot be reached either.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest13::dns::{Addrs, Name, Resolve, Resolving};

/// Whether the address is on the public internet (not loopback, private,
/// link-local, carrier-grade NAT, unspecified, broadcast, multicast,
/// documentation or reserved). IPv6 forms that carry an IPv4 address
/// (mapped, compatible, NAT64, 6to4, Teredo) are refused outright: a real
/// host is reachable without them, and they could lead into v4 space.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v6(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    !(v6.is_loopback()
        || v6.is_unspecified()
        || v6.is_multicast()
        // ::/96 IPv4-compatible (:: and ::1 included), ::ffff:0:0/96 mapped.
        || (s[..5] == [0; 5] && (s[5] == 0 || s[5] == 0xffff))
        // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 site-local.
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        // 64:ff9b::/96 and 64:ff9b:1::/48 NAT64 could reach private v4 space.
        || (s[0] == 0x64 && s[1] == 0xff9b)
        // 100::/64 discard.
        || (s[0] == 0x100 && s[1..4] == [0; 3])
        // 2001::/32 Teredo, 2001:db8::/32 documentation, 2002::/16 6to4.
        || (s[0] == 0x2001 && (s[1] == 0 || s[1] == 0xdb8))
        || s[0] == 0x2002)
}

/// Which addresses outbound requests may reach: public ones, and every
/// address with `allow_private` (a push service on your own network), or
/// just the `exempt` ones (link previews' tests reach a local server on
/// one loopback address while the others stay forbidden).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    pub allow_private: bool,
    pub exempt: Vec<IpAddr>,
}

impl AddressPolicy {
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip) || self.exempt.contains(&ip)
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        // 100.64.0.0/10 carrier-grade NAT, 192.0.0.0/24 protocol
        // assignments, 198.18.0.0/15 benchmarking, 240.0.0.0/4 reserved.
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || o[0] >= 240)
}

/// Why an outbound URL is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("not a URL")]
    Malformed,
    #[error("must be https")]
    NotHttps,
    #[error("must not carry credentials")]
    Credentials,
    #[error("points at a private or local address")]
    Private,
}

/// Checks a URL the server will request: https (http too when
/// `allow_private`), no user info, and no private IP literal unless
/// `allow_private`. Names are checked when resolved ([`GuardedResolver`]).
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest13::Url, UrlRefused> {
    let u = reqwest13::Url::parse(url).map_err(|_| UrlRefused::Malformed)?;
    match u.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(UrlRefused::NotHttps),
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(UrlRefused::Credentials);
    }
    match u.host() {
        None => return Err(UrlRefused::Malformed),
        Some(url::Host::Ipv4(ip)) if !allow_private && !public_v4(ip) => {
            return Err(UrlRefused::Private);
        }
        Some(url::Host::Ipv6(ip)) if !allow_private && !is_public(IpAddr::V6(ip)) => {
            return Err(UrlRefused::Private);
        }
        Some(url::Host::Domain(d)) if !allow_private && is_local_name(d) => {
            return Err(UrlRefused::Private);
        }
        _ => {}
    }
    Ok(u)
}

/// Names that only ever mean this machine or its network.
pub fn is_local_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h.ends_with(".local")
        || h.ends_with(".internal")
}

/// The system resolver, keeping the addresses the policy permits. A name
/// with none left fails to resolve.
pub struct GuardedResolver {
    pub policy: AddressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| policy.permits(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host}: no public address").into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// An HTTP client for user-given URLs: resolves through
/// [`GuardedResolver`] and never follows a redirect (one could lead
/// anywhere, the server's own network included).
pub fn client(
    allow_private: bool,
    timeout: std::time::Duration,
) -> Result<reqwest13::Client, String> {
    reqwest13::Client::builder()
        .dns_resolver(GuardedResolver {
            policy: AddressPolicy {
                allow_private,
                exempt: Vec::new(),
            },
        })
        .redirect(reqwest13::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(std::time::Duration::from_secs(5)))
        .user_agent(concat!("hearth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "240.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "2002:7f00:1::1",
            "2001:0:4136:e378::1",
            "2001:db8::1",
            "fec0::1",
            "100::1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "192.0.0.8",
        ] {
            assert!(!is_public(ip.parse().expect(ip)), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "172.32.0.1"] {
            assert!(is_public(ip.parse().expect(ip)), "{ip}");
        }
    }

    #[test]
    fn urls() {
        assert!(check_url("https://fcm.googleapis.com/fcm/send/abc", false).is_ok());
        assert_eq!(
            check_url("http://push.example.net/x", false).err(),
            Some(UrlRefused::NotHttps)
        );
        assert_eq!(
            check_url("https://127.0.0.1/x", false).err(),
            Some(UrlRefused::Private)
        );
        assert_eq!(
            check_url("https://[::1]/x", false).err(),
            Some(UrlRefused::Private)
        );
        assert_eq!(
            check_url("https://localhost/x", false).err(),
            Some(UrlRefused::Private)
        );
        assert_eq!(
            check_url("https://metadata.google.internal/x", false).err(),
            Some(UrlRefused::Private)
        );
        assert_eq!(
            check_url("https://u:p@push.example.net/x", false).err(),
            Some(UrlRefused::Credentials)
        );
        assert_eq!(
            check_url("ftp://push.example.net/x", true).err(),
            Some(UrlRefused::NotHttps)
        );
        assert_eq!(
            check_url("not a url", false).err(),
            Some(UrlRefused::Malformed)
        );
        assert!(check_url("http://127.0.0.1:8089/push/x", true).is_ok());
    }
}
