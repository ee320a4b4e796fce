//! Summaries over repeats: every figure becomes its median, with min and max beside it.
//!
//! Works on the JSON form of a sample so that every numeric field (including nested
//! percentile objects) is summarised the same way without listing fields twice. Integer
//! fields keep integer medians (the lower median, an actual sample's value).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// The range of a figure over the repeats.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Smallest value seen.
    pub min: f64,
    /// Largest value seen.
    pub max: f64,
}

/// Median of `values` (mean of the middle two for an even count). `None` when empty.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Median, min and max of `values`.
pub(crate) fn summarize(values: &[f64]) -> Option<(f64, Spread)> {
    let m = median(values)?;
    let finite = values.iter().copied().filter(|x| x.is_finite());
    let min = finite.clone().fold(f64::INFINITY, f64::min);
    let max = finite.fold(f64::NEG_INFINITY, f64::max);
    Some((m, Spread { min, max }))
}

/// Summarises samples of one type field by field: the returned value has the median of
/// every numeric field; the map holds the spread under dotted paths (`latency_us.p99`).
/// Non-numeric fields are taken from the first sample.
pub(crate) fn summarize_samples<T>(samples: &[T]) -> Option<(T, BTreeMap<String, Spread>)>
where
    T: Serialize + for<'de> Deserialize<'de>,
{
    let values: Vec<Value> = samples
        .iter()
        .filter_map(|s| serde_json::to_value(s).ok())
        .collect();
    let first = values.first()?.clone();
    let mut spread = BTreeMap::new();
    let merged = merge(&first, &values, "", &mut spread);
    let out = serde_json::from_value(merged).ok()?;
    Some((out, spread))
}

fn merge(first: &Value, all: &[Value], path: &str, spread: &mut BTreeMap<String, Spread>) -> Value {
    match first {
        Value::Object(obj) => {
            let mut out = Map::new();
            for (k, v) in obj {
                let children: Vec<Value> = all
                    .iter()
                    .map(|a| a.get(k).cloned().unwrap_or(Value::Null))
                    .collect();
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                out.insert(k.clone(), merge(v, &children, &p, spread));
            }
            Value::Object(out)
        }
        Value::Number(_) | Value::Null => {
            let nums: Vec<&Number> = all.iter().filter_map(|v| v.as_number()).collect();
            if nums.is_empty() {
                return first.clone();
            }
            let floats: Vec<f64> = nums.iter().filter_map(|n| n.as_f64()).collect();
            let Some((m, s)) = summarize(&floats) else {
                return first.clone();
            };
            if all.len() > 1 {
                spread.insert(path.to_owned(), s);
            }
            let ints: Option<Vec<u64>> = nums.iter().map(|n| n.as_u64()).collect();
            match ints {
                Some(mut ints) => {
                    ints.sort_unstable();
                    Value::from(ints[(ints.len() - 1) / 2])
                }
                None => Number::from_f64(m).map_or(Value::Null, Value::Number),
            }
        }
        _ => first.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct S {
        name: String,
        count: u64,
        rate: f64,
        maybe: Option<f64>,
        nested: N,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct N {
        p99: u64,
    }

    #[test]
    fn medians_and_spreads_of_every_numeric_field() {
        let s = |count, rate, maybe, p99| S {
            name: "x".into(),
            count,
            rate,
            maybe,
            nested: N { p99 },
        };
        let samples = [
            s(3, 1.0, None, 10),
            s(1, 4.0, Some(2.0), 30),
            s(2, 2.0, Some(4.0), 20),
        ];
        let (m, spread) = summarize_samples(&samples).expect("summary");
        assert_eq!(m, s(2, 2.0, Some(3.0), 20));
        assert_eq!(spread["rate"], Spread { min: 1.0, max: 4.0 });
        assert_eq!(
            spread["nested.p99"],
            Spread {
                min: 10.0,
                max: 30.0
            }
        );
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
