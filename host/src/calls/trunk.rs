//! Outbound registration to a trunk: the PBX registers itself at a
//! gateway (with digest credentials) and refreshes the registration before
//! it expires, so the provider routes inbound calls to it.

use super::{Input, TrunkConfig};
use crate::sip::{Core, new_tag};
use pbx_sip::auth::ServerChallenge;
use pbx_sip::transaction::{ClientNonInvite, Event, Reliability, Timers};
use pbx_sip::{Header, HeaderName, Headers, Method, Request, Response, Uri};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Where a trunk registration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrunkStatus {
    /// Registered until about this many seconds after the last refresh.
    Registered {
        /// The expiry the trunk granted.
        expires: u32,
    },
    /// The last attempt failed (`reason`); retried after a back-off.
    Failed {
        /// Why (a status line or "no answer").
        reason: String,
    },
}

/// Register at `trunk` and refresh forever (the task is aborted with the
/// PBX).
pub(super) async fn keep_registered(core: Arc<Core>, trunk: TrunkConfig) {
    let (Some(auth), Some(expires)) = (&trunk.auth, trunk.register) else {
        return;
    };
    let Some(dest) = core.udp_source(trunk.address) else {
        tracing::error!(trunk = trunk.name, "no UDP socket to register to the trunk from");
        return;
    };
    let local = SocketAddr::new(core.calls.advertised_ip(&dest), dest.local.port());
    let call_id = format!("{}@pbx", new_tag());
    let (tx, mut rx) = mpsc::channel(16);
    core.calls.register(&call_id, tx);
    let tag = new_tag();
    let mut cseq = 0u32;
    let mut backoff = Duration::from_secs(5);
    loop {
        let outcome = register_once(
            &core, &trunk, auth, expires, dest, local, &call_id, &tag, &mut cseq, &mut rx,
        )
        .await;
        let wait = match outcome {
            Ok(granted) => {
                tracing::info!(trunk = trunk.name, expires = granted, "registered to the trunk");
                core.calls
                    .set_trunk_status(&trunk.name, TrunkStatus::Registered { expires: granted });
                backoff = Duration::from_secs(5);
                // Refresh well before expiry.
                Duration::from_secs(u64::from(granted) * 4 / 5).max(Duration::from_secs(10))
            }
            Err(reason) => {
                tracing::warn!(trunk = trunk.name, "trunk registration failed: {reason}");
                core.calls.set_trunk_status(&trunk.name, TrunkStatus::Failed { reason });
                backoff = (backoff * 2).min(Duration::from_secs(300));
                backoff
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// One REGISTER, answering at most one challenge; the expiry granted.
#[allow(clippy::too_many_arguments)]
async fn register_once(
    core: &Arc<Core>,
    trunk: &TrunkConfig,
    auth: &super::TrunkAuth,
    expires: u32,
    dest: crate::sip::Source,
    local: SocketAddr,
    call_id: &str,
    tag: &str,
    cseq: &mut u32,
    rx: &mut mpsc::Receiver<Input>,
) -> Result<u32, String> {
    let host = trunk.address.to_string();
    let uri: Uri = format!("sip:{host}")
        .parse()
        .map_err(|_| "bad trunk address".to_string())?;
    let mut credentials: Option<(HeaderName, String)> = None;
    for _ in 0..2 {
        *cseq += 1;
        let mut h = Headers::new();
        let header = |name: HeaderName, v: String| Header::new(name, v).map_err(|e| e.to_string());
        h.push(header(HeaderName::VIA, super::dialog::via(dest.proto, local))?);
        h.push(header(HeaderName::MAX_FORWARDS, "70".into())?);
        let aor = format!("<sip:{}@{host}>", auth.username);
        h.push(header(HeaderName::FROM, format!("{aor};tag={tag}"))?);
        h.push(header(HeaderName::TO, aor)?);
        h.push(header(HeaderName::CALL_ID, call_id.to_string())?);
        h.push(header(HeaderName::CSEQ, format!("{cseq} REGISTER"))?);
        h.push(header(HeaderName::CONTACT, format!("<sip:{}@{local}>", auth.username))?);
        h.push(header(HeaderName::EXPIRES, expires.to_string())?);
        if let Some((name, value)) = &credentials {
            h.push(header(name.clone(), value.clone())?);
        }
        h.push(header(HeaderName::CONTENT_LENGTH, "0".into())?);
        let request = Request::from_parts(Method::Register, uri.clone(), h, Vec::new()).map_err(|e| e.to_string())?;
        let response = transact(core, dest, request, rx)
            .await
            .ok_or_else(|| "no answer".to_string())?;
        match response.status() {
            200..=299 => return Ok(granted(&response, expires)),
            status @ (401 | 407) if credentials.is_none() => {
                let (kind, challenge) = ServerChallenge::from_response(&response)
                    .ok_or_else(|| format!("{status} without a usable challenge"))?;
                let answer = challenge.answer(
                    "REGISTER",
                    &uri.to_string(),
                    &auth.username,
                    auth.password.expose(),
                    &new_tag(),
                    1,
                );
                credentials = Some((kind.credentials_header(), answer));
            }
            status => return Err(format!("{status} {}", response.reason())),
        }
    }
    Err("credentials refused".into())
}

/// The expiry the registrar granted: our Contact's `expires`, else the
/// `Expires` header, else what we asked for.
fn granted(response: &Response, asked: u32) -> u32 {
    let from_contact = response.contacts().ok().flatten().and_then(|c| {
        c.into_iter()
            .find_map(|c| c.params.value("expires").and_then(|v| v.parse().ok()))
    });
    let from_header = response
        .headers()
        .get(&HeaderName::EXPIRES)
        .and_then(|v| v.trim().parse().ok());
    from_contact.or(from_header).unwrap_or(asked).max(1)
}

/// Run one non-INVITE client transaction to its final response.
async fn transact(
    core: &Arc<Core>,
    dest: crate::sip::Source,
    request: Request,
    rx: &mut mpsc::Receiver<Input>,
) -> Option<Response> {
    let now = std::time::Instant::now();
    let reliability = if dest.proto == crate::sip::Proto::Udp {
        Reliability::Unreliable
    } else {
        Reliability::Reliable
    };
    let mut t = ClientNonInvite::new(request, reliability, Timers::default(), now).ok()?;
    loop {
        while let Some(e) = t.poll_event() {
            match e {
                Event::Transmit(m) => {
                    if core.send(&dest, m.to_bytes()).await.is_err() {
                        t.transport_error();
                    }
                }
                Event::Response(r) if r.status() >= 200 => return Some(r),
                Event::Response(_) => {}
                _ => return None,
            }
        }
        let deadline = t.poll_timeout().map_or_else(
            || tokio::time::Instant::now() + Duration::from_secs(32),
            tokio::time::Instant::from_std,
        );
        tokio::select! {
            input = rx.recv() => match input {
                Some(Input::Response(r)) => t.handle_response(*r, std::time::Instant::now()),
                Some(Input::Request(..)) => {}
                None => return None,
            },
            () = tokio::time::sleep_until(deadline) => t.handle_timeout(std::time::Instant::now()),
        }
    }
}
