//! The live memory gauge: total memory, what the rest of the system uses, what Perch
//! holds per loaded model (weights, KV cache in use), and the headroom left, sampled
//! once a second for any number of subscribers.
//!
//! `sysinfo` answers "used" as total minus available on both Linux and macOS (on macOS
//! its available memory counts free and inactive pages, so used covers wired, active and
//! compressed memory, as Activity Monitor's "Memory Used" does).

use std::time::Duration;

use perch_engine::EngineKind;
use serde::Serialize;
use sysinfo::System;
use tokio::sync::watch;

use crate::manager::ModelManager;

/// One reading of the gauge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemoryReading {
    /// Physical memory.
    pub total: u64,
    /// Used by everything but Perch's models.
    pub used_by_system: u64,
    /// Used by Perch's models, in all.
    pub used_by_perch: u64,
    /// Per loaded model.
    pub models: Vec<ModelMemory>,
    /// What the planner may still give to models (its budget less what the loaded
    /// models were planned to take), and no more than the system has available.
    pub headroom: u64,
    /// The planner's budget for all models.
    pub budget: u64,
}

/// What one loaded model holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelMemory {
    /// Its name.
    pub name: String,
    /// Bytes of weights.
    pub weights: u64,
    /// Bytes of KV cache in use now.
    pub kv: u64,
    /// Bytes planned for it in all.
    pub planned: u64,
}

/// Samples memory once a second.
#[derive(Clone)]
pub struct Gauge {
    readings: watch::Receiver<MemoryReading>,
}

impl Gauge {
    /// Starts sampling (inside a Tokio runtime) for as long as the gauge lives.
    pub fn start(manager: ModelManager) -> Gauge {
        let mut system = System::new();
        let first = read(&mut system, &manager);
        let (tx, rx) = watch::channel(first);
        tokio::spawn(async move {
            let second = Duration::from_secs(1);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + second, second);
            loop {
                tick.tick().await;
                if tx.is_closed() {
                    return;
                }
                let reading = read(&mut system, &manager);
                tx.send_replace(reading);
            }
        });
        Gauge { readings: rx }
    }

    /// The latest reading.
    pub fn now(&self) -> MemoryReading {
        self.readings.borrow().clone()
    }

    /// A receiver of every new reading.
    pub fn subscribe(&self) -> watch::Receiver<MemoryReading> {
        self.readings.clone()
    }
}

fn read(system: &mut System, manager: &ModelManager) -> MemoryReading {
    system.refresh_memory();
    let total = system.total_memory();
    let used = system.used_memory();
    let models: Vec<ModelMemory> = manager
        .loaded()
        .iter()
        .map(|m| {
            let info = m.engine.info();
            ModelMemory {
                name: m.name.clone(),
                weights: info.weights_bytes as u64,
                kv: m.engine.kv_bytes_in_use() as u64,
                planned: m.need.total(),
            }
        })
        .collect();
    // MLX counts what it allocates; llama.cpp's models hold their mapped weights and a KV
    // cache allocated whole at load.
    let outside_mlx: u64 = manager
        .loaded()
        .iter()
        .map(|m| m.engine.info())
        .filter(|info| info.engine == EngineKind::LlamaCpp)
        .map(|info| {
            let pool = info.serving.context * info.serving.sequences;
            (info.weights_bytes + info.kv_bytes_per_token * pool) as u64
        })
        .sum();
    let used_by_perch =
        (perch_mlx::memory::active() + perch_mlx::memory::cache()) as u64 + outside_mlx;
    let budget = manager.planner().budget().usable();
    let planned: u64 = manager.residents().iter().map(|r| r.bytes).sum();
    MemoryReading {
        total,
        used_by_system: used.saturating_sub(used_by_perch),
        used_by_perch,
        models,
        headroom: budget
            .saturating_sub(planned)
            .min(system.available_memory()),
        budget,
    }
}
