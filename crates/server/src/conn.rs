//! Accepting connections under bounds, so that slow or silent clients cannot hold the server: a
//! deadline for a request's headers (which also closes a keep-alive connection that sends nothing),
//! an idle deadline on the socket in both directions, at most `max_per_address` connections from one
//! address, and at most `max_connections` in all. When the server is full, a newcomer from an address
//! holding fewer connections than the busiest one takes the place of that address's oldest
//! connection: an attacker with fewer addresses than the server has places cannot lock out a
//! citizen.
//!
//! Reports were silenced in 2024 by exactly this kind of exhaustion; `tests/integration/hostile.rs`
//! holds 1,000 slow and silent connections open while a client submits and reads.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{oneshot, watch};

/// Bounds on connections (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// A connection must deliver a request's headers within this, counted from when it opened or
    /// finished its previous response (hyper's header timer also runs while a keep-alive connection
    /// waits for its next request).
    pub header_read_timeout: Duration,
    /// A socket on which nothing moves either way for this long is closed (a client that stops
    /// reading its response, or dribbles a body slower than the request deadline notices).
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_per_address: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_per_address: 64,
        }
    }
}

/// File descriptors kept back from connections: the log's files, tiles read for receipts, the
/// listener, standard streams.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Raises the soft limit on open files to the hard limit, and returns how many connections the
/// limit leaves room for: `wanted` or fewer, never so many that accepting one more would fail
/// with EMFILE and stall the accept loop (at least 8).
pub fn fit_to_descriptor_limit(wanted: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
    let available = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return wanted;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        limit.rlim_cur
    };
    let room = available.saturating_sub(RESERVED_DESCRIPTORS) as usize;
    wanted.min(room).max(8)
}

/// Which connections are open, by address, each with the means to close it.
#[derive(Default)]
struct Table {
    by_address: HashMap<IpAddr, VecDeque<(u64, oneshot::Sender<()>)>>,
    total: usize,
    next_id: u64,
}

impl Table {
    /// Admits a connection from `ip`, closing another to make room if the server is full and `ip`
    /// holds fewer connections than the busiest address. `None`: refused.
    fn admit(
        &mut self,
        ip: IpAddr,
        limits: &ConnectionLimits,
    ) -> Option<(u64, oneshot::Receiver<()>)> {
        let held = self.by_address.get(&ip).map_or(0, VecDeque::len);
        if held >= limits.max_per_address {
            return None;
        }
        if self.total >= limits.max_connections {
            // O(addresses), only when full; at most max_connections addresses.
            let (busiest, count) = self
                .by_address
                .iter()
                .map(|(address, open)| (*address, open.len()))
                .max_by_key(|(_, n)| *n)?;
            // Strictly more than the newcomer holds (counting a connection of its own that is
            // still closing): then the newcomer takes a place from that address.
            if count <= held {
                return None;
            }
            let open = self.by_address.get_mut(&busiest).expect("just found");
            let (_, close) = open.pop_front().expect("a busiest address has connections");
            if open.is_empty() {
                self.by_address.remove(&busiest);
            }
            self.total -= 1;
            let _ = close.send(());
        }
        let (close, closed) = oneshot::channel();
        let id = self.next_id;
        self.next_id += 1;
        self.by_address
            .entry(ip)
            .or_default()
            .push_back((id, close));
        self.total += 1;
        debug_assert!(self.total <= limits.max_connections);
        Some((id, closed))
    }

    /// Forgets a connection that ended (unless it was evicted, which already forgot it).
    fn release(&mut self, ip: IpAddr, id: u64) {
        if let Some(open) = self.by_address.get_mut(&ip) {
            if let Some(at) = open.iter().position(|(i, _)| *i == id) {
                open.remove(at);
                self.total -= 1;
            }
            if open.is_empty() {
                self.by_address.remove(&ip);
            }
        }
    }
}

/// A socket that records when anything last moved through it, in milliseconds since the
/// connection opened. The connection's own task checks it now and then (`serve_one`) and closes a
/// socket idle for too long: one timer per connection, instead of timer work on every read and
/// write (that cost about 4% of region queries, `docs/benchmarks.md`).
struct Activity<S> {
    inner: S,
    opened: std::time::Instant,
    last_moved_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl<S> Activity<S> {
    fn new(inner: S) -> (Self, Arc<std::sync::atomic::AtomicU64>) {
        let last_moved_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let socket = Activity {
            inner,
            opened: std::time::Instant::now(),
            last_moved_ms: last_moved_ms.clone(),
        };
        (socket, last_moved_ms)
    }

    fn moved(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last_moved_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Activity<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.moved();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Activity<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.moved();
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A TLS configuration from a PEM certificate chain and a PEM private key, for HTTP/1.1.
pub fn load_tls(
    certificate: &std::path::Path,
    key: &std::path::Path,
) -> io::Result<Arc<tokio_rustls::rustls::ServerConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &std::path::Path, e: &dyn std::fmt::Display| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: {e}", what.display()),
        )
    };
    let chain = CertificateDer::pem_file_iter(certificate)
        .map_err(|e| bad(certificate, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(certificate, &e))?;
    if chain.is_empty() {
        return Err(bad(certificate, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(certificate, &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad(certificate, &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` on `listener` under `limits` (over TLS when `tls` is given) until `shutdown`
/// resolves; then stops accepting, asks open connections to finish their current request, and
/// waits for them (at most `header_read_timeout`). Handlers see the peer as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
    open_connections: prometheus_client::metrics::gauge::Gauge,
) -> io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let table = Arc::new(Mutex::new(Table::default()));
    let (stop, stopping) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors or memory (EMFILE, ENFILE, ENOMEM): wait rather than spin.
                    if !matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        while tasks.try_join_next().is_some() {}
        let ip = canonical_ip(peer.ip());
        let Some((id, evicted)) = table.lock().expect("not poisoned").admit(ip, &limits) else {
            // Refused: closing at once frees the descriptor; the client sees a reset.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (router, table, mut stopping) = (router.clone(), table.clone(), stopping.clone());
        let acceptor = acceptor.clone();
        let open = open_connections.clone();
        open.inc();
        tasks.spawn(async move {
            match acceptor {
                None => serve_one(stream, peer, router, &limits, evicted, &mut stopping).await,
                Some(acceptor) => {
                    // The handshake is held to the header deadline too: a silent TLS client is a
                    // silent client.
                    let handshake =
                        tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream));
                    if let Ok(Ok(stream)) = handshake.await {
                        serve_one(stream, peer, router, &limits, evicted, &mut stopping).await;
                    }
                }
            }
            table.lock().expect("not poisoned").release(ip, id);
            open.dec();
        });
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(limits.header_read_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

async fn serve_one<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    peer: SocketAddr,
    router: axum::Router,
    limits: &ConnectionLimits,
    mut evicted: oneshot::Receiver<()>,
    stopping: &mut watch::Receiver<bool>,
) {
    use tower::ServiceExt as _;
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            router.clone().oneshot(request)
        });
    let (socket, last_moved_ms) = Activity::new(stream);
    let opened = tokio::time::Instant::now();
    let io = hyper_util::rt::TokioIo::new(socket);
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(io, service);
    tokio::pin!(connection);
    // The idle check: due `idle_timeout` after the last movement; when it comes early (something
    // moved since), it is set again for the rest of the period.
    let idle = tokio::time::sleep(limits.idle_timeout);
    tokio::pin!(idle);
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = &mut evicted => return,
            _ = idle.as_mut() => {
                let moved = std::time::Duration::from_millis(
                    last_moved_ms.load(std::sync::atomic::Ordering::Relaxed),
                );
                let due = opened + moved + limits.idle_timeout;
                if tokio::time::Instant::now() >= due {
                    return;
                }
                idle.as_mut().reset(due);
            }
            changed = stopping.changed() => {
                if changed.is_err() || *stopping.borrow() {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.as_mut().await;
                    return;
                }
            }
        }
    }
}

/// IPv4-mapped IPv6 addresses as IPv4, so one client is one address whichever way it connected.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize, max_per_address: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections,
            max_per_address,
            ..ConnectionLimits::default()
        }
    }

    #[test]
    fn one_address_cannot_take_more_than_its_cap() {
        let mut table = Table::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let limits = limits(100, 3);
        let admitted: Vec<_> = (0..5).filter_map(|_| table.admit(a, &limits)).collect();
        assert_eq!(admitted.len(), 3);
        table.release(a, admitted[0].0);
        assert!(table.admit(a, &limits).is_some());
    }

    #[test]
    fn when_full_a_newcomer_displaces_the_busiest_address() {
        let mut table = Table::default();
        let limits = limits(10, 8);
        let busy: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let mut held: Vec<_> = (0..8)
            .map(|_| table.admit(busy, &limits).unwrap())
            .collect();
        held.extend((0..2).map(|_| table.admit(other, &limits).unwrap()));
        let citizen: IpAddr = "10.0.0.3".parse().unwrap();
        let (_, _closed) = table.admit(citizen, &limits).expect("room is made");
        assert_eq!(table.total, 10);
        // The oldest connection of the busiest address was told to close.
        assert!(held[0].1.try_recv().is_ok());
        assert!(held[1].1.try_recv().is_err());
        // Its own release afterwards changes nothing.
        table.release(busy, held[0].0);
        assert_eq!(table.total, 10);
        // An address never displaces one holding as many as it does.
        let mut table = Table::default();
        let limits = self::limits(2, 8);
        table.admit(busy, &limits).unwrap();
        table.admit(busy, &limits).unwrap();
        assert!(table.admit(busy, &limits).is_none());
        let mut table = Table::default();
        table.admit(busy, &limits).unwrap();
        table.admit(other, &limits).unwrap();
        assert!(table.admit(other, &limits).is_none());
    }

    #[test]
    fn mapped_addresses_are_one_client() {
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(canonical_ip(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
    }
}
