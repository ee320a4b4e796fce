//! The deployment a capacity search grows: the scenario narrowed to its first recording
//! server and the clients that watch it, at any camera count, and the CPUs the recording
//! server gets to itself.

use crate::engine::scenario::Scenario;

/// The deployment a capacity search grows: one recording server and its clients.
#[derive(Clone, Debug)]
pub(crate) struct Shape {
    /// At its own camera count.
    pub base: Scenario,
    /// What was changed to get there, for the report.
    pub notes: Vec<String>,
}

impl Shape {
    /// Narrows `scenario` to its first recording server: other recording servers and
    /// their clients, failovers, scheduled events and remote-site collectors go;
    /// integrations that cannot speak TLS go too (they cannot use an encrypted recording
    /// server at all, and the two modes must carry the same load).
    pub(crate) fn new(mut s: Scenario) -> anyhow::Result<Shape> {
        let mut notes = Vec::new();
        let Some(mut rec) = s.recorders.first().cloned() else {
            anyhow::bail!("scenario {} has no recording server", s.name);
        };
        if rec.camera_count() == 0 {
            anyhow::bail!("scenario {}: {} has no cameras", s.name, rec.host);
        }
        let host = rec.host.clone();
        if s.recorders.len() > 1 {
            notes.push(format!(
                "only the first recording server ({host}) and its clients are simulated; {} \
                 other(s) left out",
                s.recorders.len() - 1
            ));
        }
        rec.failover = None;
        s.recorders = vec![rec];
        s.failovers.clear();
        if !s.events.is_empty() {
            notes.push("scheduled events (failovers) left out: capacity is steady-state".into());
            s.events.clear();
        }
        if s.collectors.iter().any(|c| c.count > 0) {
            notes.push(
                "remote-site data collectors left out: they do not load a recording server".into(),
            );
        }
        s.collectors.clear();
        s.viewers.retain(|v| v.recorder == host);
        s.phones.retain(|p| p.recorder == host);
        let before = s.integrations.len();
        s.integrations
            .retain(|i| i.recorder == host && (i.tls_capable || !s.encryption.streaming_media));
        if s.integrations.len() < before {
            notes.push(
                "integrations that cannot speak TLS left out (in both modes): they cannot use \
                 an encrypted recording server"
                    .into(),
            );
        }
        notes.push(format!(
            "clients scale with the cameras: at N cameras every viewer, integration and phone \
             group has round(count × N / {}) members, so the share of cameras watched stays \
             the scenario's",
            s.recorders[0].camera_count()
        ));
        Ok(Shape { base: s, notes })
    }

    /// The recording server's host.
    pub(crate) fn host(&self) -> &str {
        self.base.recorders.first().map_or("", |r| r.host.as_str())
    }

    /// Cameras on the recording server in the scenario as given.
    pub(crate) fn base_cameras(&self) -> u32 {
        self.base
            .recorders
            .first()
            .map_or(1, |r| r.camera_count().max(1))
    }

    /// The deployment with `cameras` cameras on its recording server.
    ///
    /// Not [`Scenario::scaled`]: that rounds every camera group on its own (the total
    /// would miss `cameras`) and scales the streams of each integration as well as their
    /// number (the load would grow with the square of the factor).
    pub(crate) fn at(&self, cameras: u32) -> Scenario {
        let mut s = self.base.clone();
        let base = self.base_cameras();
        let factor = f64::from(cameras) / f64::from(base);
        let scale = |n: u32| -> u32 {
            if n == 0 {
                0
            } else {
                ((f64::from(n) * factor).round() as u32).max(1)
            }
        };
        if let Some(rec) = s.recorders.first_mut() {
            let counts: Vec<u32> = rec.cameras.iter().map(|g| g.count).collect();
            for (g, n) in rec.cameras.iter_mut().zip(apportion(&counts, cameras)) {
                g.count = n;
            }
            rec.cameras.retain(|g| g.count > 0);
        }
        for v in &mut s.viewers {
            v.count = scale(v.count);
            v.view = v.view.min(cameras).max(1);
        }
        for i in &mut s.integrations {
            i.count = scale(i.count);
            i.streams = i.streams.min(cameras).max(1);
        }
        for p in &mut s.phones {
            p.count = scale(p.count);
            p.cameras_each = p.cameras_each.min(cameras).max(1);
        }
        s.name = format!("{} at {cameras} cameras", self.base.name);
        s
    }
}

/// Splits `total` in proportion to `weights` (largest remainders), exactly.
fn apportion(weights: &[u32], total: u32) -> Vec<u32> {
    let sum: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if sum == 0 {
        return weights.iter().map(|_| 0).collect();
    }
    let exact: Vec<f64> = weights
        .iter()
        .map(|w| f64::from(*w) * f64::from(total) / sum as f64)
        .collect();
    let mut out: Vec<u32> = exact.iter().map(|x| x.floor() as u32).collect();
    let mut left = total.saturating_sub(out.iter().sum());
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| {
        let (fa, fb) = (exact[*a] - exact[*a].floor(), exact[*b] - exact[*b].floor());
        fb.total_cmp(&fa).then(a.cmp(b))
    });
    for i in order.into_iter().cycle().take(weights.len() * 2) {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::scenario::file;

    #[test]
    fn apportion_is_exact_and_proportional() {
        assert_eq!(apportion(&[32], 100), vec![100]);
        assert_eq!(apportion(&[1, 1, 1], 10), vec![4, 3, 3]);
        assert_eq!(apportion(&[30, 10], 8), vec![6, 2]);
        assert_eq!(apportion(&[30, 10], 1), vec![1, 0]);
        assert_eq!(apportion(&[0, 0], 5), vec![0, 0]);
        for total in 0..200 {
            assert_eq!(apportion(&[7, 3, 1], total).iter().sum::<u32>(), total);
        }
    }

    #[test]
    fn clients_grow_with_the_cameras_keeping_the_share_watched() {
        let small = file::load_preset("small").expect("preset");
        let shape = Shape::new(small).expect("shape");
        assert_eq!(shape.base_cameras(), 32);
        let at = |n| shape.at(n);
        let s = at(32);
        assert_eq!(s.recorders[0].camera_count(), 32);
        assert_eq!(s.viewers, shape.base.viewers);
        let s = at(320);
        assert_eq!(s.recorders[0].camera_count(), 320);
        assert!(s.viewers.iter().all(|v| v.count == 10), "{:?}", s.viewers);
        assert_eq!(s.phones[0].count, 50);
        // Views never exceed the cameras; every group keeps at least one member.
        let s = at(2);
        assert!(s.viewers.iter().all(|v| v.count == 1 && v.view <= 2));
        // Load never shrinks as cameras grow (the search relies on it).
        let streams = |s: &Scenario| -> u32 {
            s.viewers.iter().map(|v| v.count * v.view).sum::<u32>()
                + s.phones
                    .iter()
                    .map(|p| p.count * p.cameras_each)
                    .sum::<u32>()
        };
        let mut last = 0;
        for n in 1..500 {
            let k = streams(&at(n));
            assert!(k >= last, "{n}: {k} < {last}");
            last = k;
        }
    }

    #[test]
    fn only_the_first_recorder_and_its_clients_are_kept() {
        let medium = file::load_preset("medium").expect("preset");
        let host = medium.recorders[0].host.clone();
        let shape = Shape::new(medium).expect("shape");
        assert_eq!(shape.base.recorders.len(), 1);
        assert!(shape.base.failovers.is_empty() && shape.base.events.is_empty());
        assert!(shape.base.viewers.iter().all(|v| v.recorder == host));
        assert!(shape
            .base
            .integrations
            .iter()
            .all(|i| i.recorder == host && i.tls_capable));
        assert!(shape
            .notes
            .iter()
            .any(|n| n.contains("first recording server")));
    }
}
