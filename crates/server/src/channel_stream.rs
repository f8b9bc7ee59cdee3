//! A response body fed by an async task through a channel, shared by the streaming
//! answers of every API family (SSE for OpenAI, NDJSON for Ollama). Dropping the stream
//! (the client went away) closes the channel, which the task watches for to end itself
//! and the generation it drives.

use std::convert::Infallible;

/// Runs `task` with the sending side; the returned stream yields what it sends.
pub(crate) fn channel_stream<T, F, Fut>(
    task: F,
) -> impl futures_util::Stream<Item = Result<T, Infallible>>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(task(tx));
    futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}

/// Sends `item`, giving up after `timeout`: a client that keeps its connection open but
/// reads nothing that long is treated as gone. False when it is gone.
pub(crate) async fn send_within<T>(
    tx: &tokio::sync::mpsc::Sender<T>,
    item: T,
    timeout: std::time::Duration,
) -> bool {
    matches!(
        tokio::time::timeout(timeout, tx.send(item)).await,
        Ok(Ok(()))
    )
}
