//! Who is calling, by network address: the TCP peer, or, behind a proxy listed in
//! `TRUSTED_PROXIES`, the address that proxy wrote into `CLIENT_ADDRESS_HEADER`. A header from
//! anyone else is ignored, so a client cannot pick the address its rate limits count against.
//! With `X-Forwarded-For`-style lists the rightmost entry that is not a trusted proxy is the
//! client: entries to its left were written by the client itself.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use crate::config::ServerLimits;
use crate::domain::throttle::Action;
use crate::graphql::error::{ErrorCode, retry_after_seconds};

/// The resolved address, for handlers further in.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

pub fn resolve(request: &Request, limits: &ServerLimits) -> Option<IpAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())?;
    let Some(name) = &limits.client_address_header else {
        return Some(peer);
    };
    if !limits.trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = request
        .headers()
        .get_all(name.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|addr| !limits.trusted_proxies.contains(addr))
            .unwrap_or(peer),
    )
}

/// Resolves the client address, records it for the handlers, and takes one request from its
/// budget (`RATE_LIMIT_REQUESTS_PER_SEC`): past it, HTTP 429 with `Retry-After` and a
/// `RATE_LIMITED` body.
pub async fn limit_requests(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let address = resolve(&request, &state.limits);
    if let Some(address) = address {
        request.extensions_mut().insert(ClientAddress(address));
    }
    match state.services.throttle.check(Action::Request, address) {
        Ok(()) => next.run(request).await,
        Err(crate::domain::Error::RateLimited {
            message,
            retry_after,
        }) => {
            let seconds = retry_after_seconds(retry_after);
            let body = serde_json::json!({
                "errors": [{
                    "message": message,
                    "extensions": { "code": ErrorCode::RateLimited.as_str(), "retryAfter": seconds },
                }],
            });
            let mut response = super::json_response(StatusCode::TOO_MANY_REQUESTS, &body);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Err(_) => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, forwarded: Option<&str>) -> Request {
        let mut builder = Request::builder().uri("/graphql");
        if let Some(value) = forwarded {
            builder = builder.header("x-forwarded-for", value);
        }
        let mut request = builder.body(axum::body::Body::empty()).expect("request");
        let peer: SocketAddr = peer.parse().expect("addr");
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy_and_only_its_rightmost_untrusted_entry() {
        let limits = ServerLimits {
            client_address_header: Some("x-forwarded-for".into()),
            trusted_proxies: vec!["10.0.0.2".parse().expect("ip")],
            ..ServerLimits::default()
        };
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        // From the proxy: the client it saw, not what the client claimed before it.
        let via_proxy = request("10.0.0.2:5000", Some("1.2.3.4, 198.51.100.9"));
        assert_eq!(resolve(&via_proxy, &limits), ip("198.51.100.9"));
        // Straight from a client: its own header is ignored.
        let direct = request("203.0.113.5:5000", Some("1.2.3.4"));
        assert_eq!(resolve(&direct, &limits), ip("203.0.113.5"));
        // Without the setting, the peer.
        let plain = request("10.0.0.2:5000", Some("1.2.3.4"));
        assert_eq!(resolve(&plain, &ServerLimits::default()), ip("10.0.0.2"));
    }
}
