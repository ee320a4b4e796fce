//! `--scale F`: the same deployment with more or fewer cameras and clients, so that CI can
//! run a large preset briefly (as rustls-bench's `--multiplier` does).

use crate::engine::scenario::Scenario;

/// The largest scale factor accepted.
pub(super) const MAX_SCALE: f64 = 1000.0;

impl Scenario {
    /// This scenario with every count multiplied by `factor` and rounded: cameras per group,
    /// viewers, integrations, phones and collectors per group, and the streams each
    /// integration pulls. A count that was above 0 stays at least 1, so no group disappears.
    /// Views and cameras per phone stay as they are, but no more than the recording server's
    /// (scaled) cameras; integration streams are capped the same way. Servers, profiles,
    /// timings and events do not change; the description says the factor.
    ///
    /// `factor` must be positive and finite (see [`parse_scale`]); any other value returns
    /// the scenario unchanged.
    pub fn scaled(&self, factor: f64) -> Scenario {
        let mut s = self.clone();
        if !(factor.is_finite() && factor > 0.0) || factor == 1.0 {
            return s;
        }
        // `as` saturates: a factor that overflows u32 gives u32::MAX.
        let scale = |n: u32| -> u32 {
            if n == 0 {
                0
            } else {
                ((f64::from(n) * factor).round() as u32).max(1)
            }
        };
        for r in &mut s.recorders {
            for g in &mut r.cameras {
                g.count = scale(g.count);
            }
        }
        let cameras_of =
            |s: &Scenario, host: &str| s.recorder(host).map_or(1, |r| r.camera_count());
        for i in 0..s.viewers.len() {
            let cameras = cameras_of(&s, &s.viewers[i].recorder);
            let v = &mut s.viewers[i];
            v.count = scale(v.count);
            v.view = v.view.min(cameras).max(1);
        }
        for i in 0..s.integrations.len() {
            let cameras = cameras_of(&s, &s.integrations[i].recorder);
            let g = &mut s.integrations[i];
            g.count = scale(g.count);
            g.streams = scale(g.streams).min(cameras).max(1);
        }
        for i in 0..s.phones.len() {
            let cameras = cameras_of(&s, &s.phones[i].recorder);
            let p = &mut s.phones[i];
            p.count = scale(p.count);
            p.cameras_each = p.cameras_each.min(cameras).max(1);
        }
        for c in &mut s.collectors {
            c.count = scale(c.count);
        }
        s.description = if s.description.is_empty() {
            format!("scaled ×{factor}")
        } else {
            format!("{} (scaled ×{factor})", s.description)
        };
        s
    }
}

/// Parses a scale factor for `--scale` (clap's `value_parser` signature): a positive
/// number up to 1000 (`MAX_SCALE`), e.g. `0.1` or `2`.
pub fn parse_scale(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| {
        format!("{s:?} is not a number; e.g. 0.1 for a tenth of every count, 2 for twice")
    })?;
    if !(v.is_finite() && v > 0.0 && v <= MAX_SCALE) {
        return Err(format!(
            "the scale must be above 0 and at most {MAX_SCALE}, not {v}"
        ));
    }
    Ok(v)
}
