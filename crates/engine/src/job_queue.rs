//! The requests waiting for a model's worker thread, in arrival order. A request whose
//! caller gives up while it waits is taken out at once (with its prompt), so abandoned
//! requests never pile up behind a long one, and its end is logged when it happens rather
//! than when the worker would have reached it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::embed::{EmbedRequest, EmbeddingRecipe, Embeddings};
use crate::generate::{Event, GenerateRequest};
use crate::Result;

/// What a job asks of the model, and where its answer goes.
pub(crate) enum Work {
    /// Generate, sending events as they come.
    Generate {
        request: GenerateRequest,
        events: tokio::sync::mpsc::UnboundedSender<Result<Event>>,
    },
    /// Embed, answering once.
    Embed {
        request: EmbedRequest,
        recipe: EmbeddingRecipe,
        reply: tokio::sync::oneshot::Sender<Result<Embeddings>>,
    },
}

/// One request for the worker.
pub(crate) struct Job {
    pub id: u64,
    pub work: Work,
    pub cancel: Arc<AtomicBool>,
    /// The caller's tracing span, entered while the job runs.
    pub span: tracing::Span,
    /// When the request arrived (time to first token counts from here).
    pub arrived: Instant,
}

#[derive(Default)]
struct Waiting {
    jobs: VecDeque<Job>,
    next_id: u64,
}

/// Jobs in order, shared by callers and the worker.
#[derive(Default)]
pub(crate) struct JobQueue {
    waiting: Mutex<Waiting>,
    ready: Condvar,
    /// Set (under the lock) by [`JobQueue::close`]; read without it by the running job's
    /// cancellation checks.
    closed: AtomicBool,
}

impl JobQueue {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        // A panic while holding the lock leaves the queue itself consistent.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh job id.
    pub fn next_id(&self) -> u64 {
        let mut waiting = self.lock();
        waiting.next_id += 1;
        waiting.next_id
    }

    /// Queues `job`; false (and the job dropped) if the queue is closed.
    pub fn push(&self, job: Job) -> bool {
        let mut waiting = self.lock();
        if self.is_closed() {
            return false;
        }
        waiting.jobs.push_back(job);
        self.ready.notify_one();
        true
    }

    /// The next job, waiting for one; `None` once the queue is closed and empty.
    pub fn pop(&self) -> Option<Job> {
        let mut waiting = self.lock();
        loop {
            if let Some(job) = waiting.jobs.pop_front() {
                return Some(job);
            }
            if self.is_closed() {
                return None;
            }
            waiting = self.ready.wait(waiting).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Every waiting job, in order, without waiting for one.
    pub fn take_all(&self) -> Vec<Job> {
        self.lock().jobs.drain(..).collect()
    }

    /// Takes job `id` out if it is still waiting.
    pub fn remove(&self, id: u64) -> Option<Job> {
        let mut waiting = self.lock();
        let at = waiting.jobs.iter().position(|j| j.id == id)?;
        waiting.jobs.remove(at)
    }

    /// Accepts no more jobs; the worker finishes the queued ones (cancelled) and stops.
    pub fn close(&self) {
        let _waiting = self.lock();
        self.closed.store(true, Ordering::Relaxed);
        self.ready.notify_all();
    }

    /// Whether [`JobQueue::close`] was called: the engine is going away, and whatever runs
    /// or waits is cancelled.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(queue: &JobQueue) -> Job {
        Job {
            id: queue.next_id(),
            work: Work::Generate {
                request: GenerateRequest::default(),
                events: tokio::sync::mpsc::unbounded_channel().0,
            },
            cancel: Arc::default(),
            span: tracing::Span::none(),
            arrived: Instant::now(),
        }
    }

    #[test]
    fn jobs_come_out_in_order_and_removed_ones_never_do() {
        let queue = JobQueue::default();
        let ids: Vec<u64> = (0..3)
            .map(|_| {
                let j = job(&queue);
                let id = j.id;
                assert!(queue.push(j));
                id
            })
            .collect();
        assert_eq!(queue.remove(ids[1]).map(|j| j.id), Some(ids[1]));
        assert!(queue.remove(ids[1]).is_none());
        assert_eq!(queue.pop().map(|j| j.id), Some(ids[0]));
        queue.close();
        assert!(!queue.push(job(&queue)));
        assert_eq!(queue.pop().map(|j| j.id), Some(ids[2]));
        assert!(queue.pop().is_none());
    }

    #[test]
    fn a_waiting_worker_wakes_for_a_job_and_for_closing() {
        let queue = Arc::new(JobQueue::default());
        let worker = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                let mut seen = 0;
                while queue.pop().is_some() {
                    seen += 1;
                }
                seen
            })
        };
        assert!(queue.push(job(&queue)));
        queue.close();
        assert_eq!(worker.join().unwrap(), 1);
    }
}
