//! The serving loop, with the bounds `axum::serve` lacks: HTTP/1.1 connections (from
//! every address in [`Listeners`], each request marked with the address it arrived on)
//! served by hyper with a deadline for each request head (which also closes idle keep-alive
//! connections), a cap on open connections (past it a connection gets one 503 and is
//! closed, so a flood cannot exhaust file handles), and a bounded shutdown: stop
//! accepting, let requests in flight finish for a grace period, then drop the rest, which
//! cancels their generations.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Request;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::arrival::Arrival;
use crate::listeners::Accepted;
use crate::metrics::CountedPermit;
use crate::{ApiError, AppState, Listeners};

/// Serves the API on `listeners` until `shutdown` completes; then stops accepting, lets
/// requests in flight (streams included) finish for up to `grace`, and cancels whatever
/// is left.
pub async fn serve(
    listeners: Listeners,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let limits = state.limits.clone();
    let follower = match state.exposure.clone() {
        Some(exposure) => {
            let settings = state.node.live.current();
            if let Err(e) = exposure.apply(&state, &settings).await {
                return Err(std::io::Error::other(e));
            }
            Some(tokio::spawn(crate::exposure::follow(
                state.clone(),
                exposure,
            )))
        }
        None => None,
    };
    let router = crate::router(state);
    let mut accepted = listeners
        .take_accepted()
        .expect("one server serves a set of listeners");
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let upkeep = crate::metrics::start();
    tokio::pin!(shutdown);
    loop {
        let Accepted { socket, local } = tokio::select! {
            () = &mut shutdown => break,
            next = accepted.recv() => match next {
                Some(next) => next,
                None => break,
            },
        };
        while connections.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("perch_connections_refused_total").increment(1);
            connections.spawn(refuse(socket, limits.max_connections));
            continue;
        };
        let _ = socket.set_nodelay(true);
        let arrival = Arrival { local };
        let router = router.clone();
        let service =
            TowerToHyperService::new(tower::service_fn(move |mut request: Request<_>| {
                request.extensions_mut().insert(arrival);
                tower::ServiceExt::oneshot(router.clone(), request)
            }));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(socket), service));
        connections.spawn(async move {
            let _open = CountedPermit::new(slot, "perch_connections_open");
            if let Err(e) = connection.await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
    if let Some(follower) = follower {
        follower.abort();
    }
    listeners.close();
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_s = grace.as_secs_f64(),
            "requests still running after the grace period: cancelling them"
        );
        connections.abort_all();
    }
    while connections.join_next().await.is_some() {}
    upkeep.abort();
    Ok(())
}

/// Answers one 503 on a connection past the cap, and closes it. The request the client
/// already sent is read (briefly, boundedly) first: closing a socket with unread data
/// sends a reset, which the client would see instead of the answer.
async fn refuse(mut socket: TcpStream, max_connections: usize) {
    let body = ApiError::too_many_connections(max_connections)
        .body()
        .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = async {
        socket.write_all(response.as_bytes()).await?;
        socket.shutdown().await?;
        let mut unread = [0u8; 8192];
        while socket.read(&mut unread).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), answer).await;
}
