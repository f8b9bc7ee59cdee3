//! Integer fields that also accept whole numbers written as floats (`163.0`), as JSON
//! Schema's `integer` does and as Python clients sometimes send; `163.5` or `-1` is
//! still refused, naming the field.

use serde::de::{Deserialize, Deserializer, Error};
use serde_json::Number;

fn whole<T: TryFrom<u64>, E: Error>(n: &Number) -> Result<T, E> {
    let value = match (n.as_u64(), n.as_f64()) {
        (Some(v), _) => Some(v),
        (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => Some(f as u64),
        _ => None,
    };
    value
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| E::custom(format!("expected a whole number in range, got {n}")))
}

/// For `Option<u32>` / `Option<u64>` fields.
pub(crate) fn option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    Option::<Number>::deserialize(deserializer)?
        .map(|n| whole(&n))
        .transpose()
}

/// For lists of token ids.
pub(crate) fn list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    Vec::<Number>::deserialize(deserializer)?
        .iter()
        .map(whole)
        .collect()
}
