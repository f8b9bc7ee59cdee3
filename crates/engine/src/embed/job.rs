//! [`EmbeddingJob`]: an embedding request handed to a model's worker, for its caller to
//! await. Dropping it cancels the request: taken out of the queue if it is still waiting,
//! stopped at its next chunk if it runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::Embeddings;
use crate::job_queue::JobQueue;
use crate::{EngineError, Result};

/// An embedding request on its way through a model.
pub struct EmbeddingJob {
    pub(crate) reply: Option<tokio::sync::oneshot::Receiver<Result<Embeddings>>>,
    pub(crate) cancel: Arc<AtomicBool>,
    pub(crate) queue: Arc<JobQueue>,
    pub(crate) id: u64,
}

impl EmbeddingJob {
    /// The embeddings, awaited (once: a second call finds the model gone).
    pub async fn result(&mut self) -> Result<Embeddings> {
        let reply = self.reply.take().ok_or(EngineError::Unloaded)?;
        reply.await.map_err(|_| EngineError::Unloaded)?
    }

    /// The embeddings, waited for. Must not be called from inside an async runtime (use
    /// [`Self::result`] there).
    pub fn blocking_result(&mut self) -> Result<Embeddings> {
        let reply = self.reply.take().ok_or(EngineError::Unloaded)?;
        reply.blocking_recv().map_err(|_| EngineError::Unloaded)?
    }
}

impl Drop for EmbeddingJob {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.queue.remove(self.id);
    }
}
