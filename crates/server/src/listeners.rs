//! The sockets the server accepts on: a set of addresses on one port that can change
//! while it runs. A change binds the new addresses first and only then stops accepting
//! on the old ones; connections already made on an old address (streams included) carry
//! on until they end. Every accepted connection travels with the local address it
//! arrived on, which decides whether it needs an API key.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// A connection as accepted, with the address it arrived on.
pub(crate) struct Accepted {
    pub socket: TcpStream,
    pub local: SocketAddr,
}

/// The listening sockets. Cloning gives another handle on the same set.
#[derive(Clone)]
pub struct Listeners {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    /// Set once the server stops: no socket is bound again.
    closed: bool,
    port: u16,
    accepting: BTreeMap<SocketAddr, AbortHandle>,
    sender: mpsc::Sender<Accepted>,
    receiver: Option<mpsc::Receiver<Accepted>>,
}

impl Listeners {
    /// Listens on each of `addresses` at `port` (0: a free port, the same for all).
    pub async fn bind(addresses: &[IpAddr], port: u16) -> io::Result<Listeners> {
        let listeners = Listeners::empty(port);
        listeners.rebind(addresses, port).await?;
        Ok(listeners)
    }

    fn empty(port: u16) -> Listeners {
        let (sender, receiver) = mpsc::channel(64);
        Listeners {
            inner: Arc::new(Mutex::new(Inner {
                closed: false,
                port,
                accepting: BTreeMap::new(),
                sender,
                receiver: Some(receiver),
            })),
        }
    }

    /// The addresses listened on now.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.lock().accepting.keys().copied().collect()
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.lock().port
    }

    /// Listens on exactly `addresses` at `port` (0 keeps the port in use, or picks a
    /// free one): binds what is new first — when a bind fails nothing changes — then
    /// stops accepting on what is no longer wanted. An address the machine no longer has
    /// (a network gone away) is left out rather than failing the rest; those are
    /// returned.
    pub async fn rebind(&self, addresses: &[IpAddr], port: u16) -> io::Result<Vec<IpAddr>> {
        let current = {
            let inner = self.lock();
            if inner.closed {
                return Err(io::Error::other("the server is shutting down"));
            }
            inner.accepting.clone()
        };
        let mut chosen = match port {
            0 => port_of(&current).unwrap_or(0),
            port => port,
        };
        let mut fresh = Vec::new();
        let mut gone = Vec::new();
        for ip in addresses {
            let address = SocketAddr::new(*ip, chosen);
            if chosen != 0 && current.contains_key(&address) {
                continue;
            }
            let listener = match TcpListener::bind(address).await {
                Ok(listener) => listener,
                Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable && !ip.is_loopback() => {
                    tracing::warn!(%address, "left out: the machine no longer has this address");
                    gone.push(*ip);
                    continue;
                }
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot listen on {address}: {e}"),
                    ))
                }
            };
            let local = listener.local_addr()?;
            chosen = local.port();
            fresh.push((local, listener));
        }
        let mut inner = self.lock();
        if inner.closed {
            return Err(io::Error::other("the server is shutting down"));
        }
        inner.port = chosen;
        for (local, listener) in fresh {
            let task = tokio::spawn(accept(listener, local, inner.sender.clone()));
            tracing::info!(address = %local, "listening");
            inner.accepting.insert(local, task.abort_handle());
        }
        let wanted: Vec<SocketAddr> = addresses
            .iter()
            .map(|ip| SocketAddr::new(*ip, chosen))
            .collect();
        inner.accepting.retain(|address, task| {
            let keep = wanted.contains(address);
            if !keep {
                task.abort();
                tracing::info!(%address, "stopped listening");
            }
            keep
        });
        Ok(gone)
    }

    /// The URL this machine reaches the server at: a loopback address it listens on,
    /// else the first address.
    pub fn local_url(&self) -> String {
        let listening = self.addresses();
        let address = listening
            .iter()
            .find(|a| a.ip().is_loopback())
            .or(listening.first())
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], self.port())));
        format!("http://{address}")
    }

    /// Stops accepting everywhere, for good.
    pub(crate) fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        for task in inner.accepting.values() {
            task.abort();
        }
        inner.accepting.clear();
    }

    /// The accepted connections, for the one server that serves them.
    pub(crate) fn take_accepted(&self) -> Option<mpsc::Receiver<Accepted>> {
        self.lock().receiver.take()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl From<TcpListener> for Listeners {
    /// Accepts on a socket already bound.
    fn from(listener: TcpListener) -> Listeners {
        let local = listener
            .local_addr()
            .expect("a bound socket has an address");
        let listeners = Listeners::empty(local.port());
        {
            let mut inner = listeners.lock();
            let task = tokio::spawn(accept(listener, local, inner.sender.clone()));
            inner.accepting.insert(local, task.abort_handle());
        }
        listeners
    }
}

fn port_of(accepting: &BTreeMap<SocketAddr, AbortHandle>) -> Option<u16> {
    accepting.keys().next().map(SocketAddr::port)
}

/// Accepts on `listener` until aborted (which closes it) or the server is gone. Each
/// connection carries the address it arrived on (the socket's own, in case the listener
/// is a wildcard).
async fn accept(listener: TcpListener, bound: SocketAddr, sender: mpsc::Sender<Accepted>) {
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                let local = socket.local_addr().unwrap_or(bound);
                if sender.send(Accepted { socket, local }).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // Out of file handles, most likely: give the open ones a moment to close
                // instead of spinning.
                tracing::warn!(%bound, "accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use tokio::net::TcpStream;

    use super::*;

    const ONE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const TWO: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    #[tokio::test]
    async fn a_move_that_cannot_bind_changes_nothing_and_one_that_can_moves() {
        let listeners = Listeners::bind(&[ONE], 0).await.unwrap();
        let port = listeners.port();
        let mut accepted = listeners.take_accepted().unwrap();

        let squatter = TcpListener::bind((TWO, port)).await.unwrap();
        let refused = listeners.rebind(&[ONE, TWO], 0).await.unwrap_err();
        assert!(refused.to_string().contains("127.0.0.2"), "{refused}");
        assert_eq!(listeners.addresses(), vec![SocketAddr::new(ONE, port)]);
        let _kept = TcpStream::connect((ONE, port)).await.unwrap();
        assert_eq!(
            accepted.recv().await.unwrap().local,
            SocketAddr::new(ONE, port)
        );

        drop(squatter);
        listeners.rebind(&[TWO], 0).await.unwrap();
        assert_eq!(listeners.addresses(), vec![SocketAddr::new(TWO, port)]);
        let _moved = TcpStream::connect((TWO, port)).await.unwrap();
        assert_eq!(
            accepted.recv().await.unwrap().local,
            SocketAddr::new(TWO, port)
        );
        // The old socket closes once its aborted task is dropped, within moments.
        let mut closed = false;
        for _ in 0..100 {
            if TcpStream::connect((ONE, port)).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(closed, "the old address no longer accepts");
    }
}
