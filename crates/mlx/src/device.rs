//! Compute devices: which exist, which is the default, and what MLX reports about them
//! (on Metal, the recommended working-set size the memory planner budgets against).

use crate::ffi::bridge as ffi;
use crate::Result;

/// A kind of compute device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// The CPU.
    Cpu,
    /// The GPU (Metal or CUDA).
    Gpu,
}

impl DeviceKind {
    fn is_gpu(self) -> bool {
        self == DeviceKind::Gpu
    }
}

/// Whether MLX can run on this kind of device here.
pub fn is_available(kind: DeviceKind) -> Result<bool> {
    Ok(ffi::device_available(kind.is_gpu())?)
}

/// The device new operations run on.
pub fn default_device() -> DeviceKind {
    if ffi::default_device_is_gpu() {
        DeviceKind::Gpu
    } else {
        DeviceKind::Cpu
    }
}

/// Makes `kind` the device new operations run on.
pub fn set_default_device(kind: DeviceKind) -> Result<()> {
    Ok(ffi::set_default_device(kind.is_gpu())?)
}

/// A value in [`DeviceInfo`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InfoValue {
    /// A number, such as a memory size in bytes.
    Number(u64),
    /// A text, such as the device name.
    Text(String),
}

/// What MLX reports about a device, as key-value pairs.
#[derive(Clone, Debug, Default)]
pub struct DeviceInfo {
    /// The pairs, in MLX's order.
    pub entries: Vec<(String, InfoValue)>,
}

impl DeviceInfo {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&InfoValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The number under `key`, if it is one.
    pub fn number(&self, key: &str) -> Option<u64> {
        match self.get(key)? {
            InfoValue::Number(n) => Some(*n),
            InfoValue::Text(_) => None,
        }
    }

    /// Metal's recommended working-set size in bytes, where MLX reports one.
    pub fn recommended_working_set(&self) -> Option<u64> {
        self.number("max_recommended_working_set_size")
    }
}

/// What MLX reports about `kind` (name, architecture, memory sizes…).
pub fn device_info(kind: DeviceKind) -> Result<DeviceInfo> {
    let entries = ffi::device_info(kind.is_gpu())?
        .into_iter()
        .map(|e| {
            let value = if e.is_number {
                InfoValue::Number(e.number)
            } else {
                InfoValue::Text(e.text)
            };
            (e.key, value)
        })
        .collect();
    Ok(DeviceInfo { entries })
}
