//! The rules every scenario keeps once it is resolved, whatever made it: a file (whose
//! resolution already refuses each mistake at its line and column), command-line flags
//! that change a preset, `--scale`, or a capacity search growing it. A scenario that
//! breaks one is refused before anything runs, naming the group at fault and what exists.

use super::file::ScenarioError;
use super::{
    Scenario, MAX_CAMERAS, MAX_GROUP, MAX_PHONE_CAMERAS, MAX_QUEUE_FRAMES, MAX_THREADS, MAX_VIEW,
};

impl Scenario {
    /// Checks that every count is within its limits and that every client group watches
    /// cameras that exist: its recording server is one of the scenario's (not a failover),
    /// and it asks each client for no more cameras than that server has.
    pub fn check(&self) -> Result<(), ScenarioError> {
        let refuse = |message: String| ScenarioError {
            origin: format!("scenario {}", self.name),
            line: 0,
            column: 0,
            message,
        };
        if self.recorders.is_empty() {
            return Err(refuse(
                "a scenario needs at least one recording server".to_owned(),
            ));
        }
        for r in &self.recorders {
            let total: u64 = r.cameras.iter().map(|g| u64::from(g.count)).sum();
            if !(1..=MAX_CAMERAS).contains(&total) {
                return Err(refuse(format!(
                    "recording server {} has {total} cameras; a recording server has 1 to \
                     {MAX_CAMERAS}",
                    r.host
                )));
            }
        }
        let groups = (self.viewers.iter().map(|g| ("viewer", &g.name, g.count)))
            .chain(
                self.integrations
                    .iter()
                    .map(|g| ("integration", &g.name, g.count)),
            )
            .chain(self.phones.iter().map(|g| ("phone", &g.name, g.count)))
            .chain(
                self.collectors
                    .iter()
                    .map(|g| ("collector", &g.name, g.count)),
            );
        for (kind, name, count) in groups {
            if u64::from(count) > MAX_GROUP {
                return Err(refuse(format!(
                    "{kind} group {name:?} has {count} members; a group has at most {MAX_GROUP}"
                )));
            }
        }
        for g in &self.viewers {
            self.watches(
                "viewer",
                &g.name,
                &g.recorder,
                g.view,
                "cameras in its view",
                MAX_VIEW,
            )
            .map_err(refuse)?;
        }
        for g in &self.integrations {
            self.watches(
                "integration",
                &g.name,
                &g.recorder,
                g.streams,
                "streams",
                MAX_GROUP,
            )
            .map_err(refuse)?;
        }
        for g in &self.phones {
            if g.count > 0 && self.mobile_server.is_none() {
                return Err(refuse(format!(
                    "phone group {:?} connects through the mobile server, and there is none",
                    g.name
                )));
            }
            self.watches(
                "phone",
                &g.name,
                &g.recorder,
                g.cameras_each,
                "cameras each",
                MAX_PHONE_CAMERAS,
            )
            .map_err(refuse)?;
        }
        for (what, n, max) in [
            ("server_threads", self.server_threads as u64, MAX_THREADS),
            ("client_threads", self.client_threads as u64, MAX_THREADS),
            ("queue_frames", self.queue_frames as u64, MAX_QUEUE_FRAMES),
        ] {
            if !(1..=max).contains(&n) {
                return Err(refuse(format!("{what} must be 1 to {max}, not {n}")));
            }
        }
        Ok(())
    }

    /// Checks that a client group of `kind` named `name` watches `each` cameras (`what`)
    /// per client of `recorder`, a recording server of this scenario with that many
    /// cameras, and no more than `max`.
    fn watches(
        &self,
        kind: &str,
        name: &str,
        recorder: &str,
        each: u32,
        what: &str,
        max: u64,
    ) -> Result<(), String> {
        let Some(r) = self.recorder(recorder) else {
            let recorders: Vec<&str> = self.recorders.iter().map(|r| r.host.as_str()).collect();
            let what = if self.failovers.iter().any(|f| f == recorder) {
                "a failover server; clients name the recording server it stands in for"
            } else {
                "not a recording server of this scenario"
            };
            return Err(format!(
                "{kind} group {name:?} watches {recorder}, which is {what}; recording servers \
                 are: {}",
                recorders.join(", ")
            ));
        };
        let cameras = r.camera_count();
        let most = u64::from(cameras).min(max);
        if !(1..=most).contains(&u64::from(each)) {
            return Err(format!(
                "{kind} group {name:?} asks for {each} {what} of {recorder}, which has \
                 {cameras} cameras: give 1 to {most}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::scenario::file::load_preset;

    #[test]
    fn clients_must_watch_cameras_that_exist() {
        let small = load_preset("small").expect("preset");
        assert_eq!(small.check(), Ok(()));

        let mut s = small.clone();
        s.recorders[0].cameras[0].count = 4;
        let e = s.check().expect_err("a 3×3 view of 4 cameras").to_string();
        assert_eq!(
            e,
            "scenario small: viewer group \"operator-3x3\" asks for 9 cameras in its view of \
             recorder-1.vms.test, which has 4 cameras: give 1 to 4"
        );

        let mut s = small.clone();
        s.viewers[1].recorder = "recorder-9.vms.test".into();
        let e = s.check().expect_err("no such recorder").to_string();
        assert!(
            e.contains(
                "\"operator-3x3\" watches recorder-9.vms.test, which is not a recording server"
            ) && e.ends_with("recording servers are: recorder-1.vms.test"),
            "{e}"
        );

        let mut s = small.clone();
        s.phones[0].cameras_each = 0;
        let e = s.check().expect_err("a phone watching nothing").to_string();
        assert!(
            e.contains("\"phone\" asks for 0 cameras each") && e.ends_with("give 1 to 16"),
            "{e}"
        );

        let mut s = small.clone();
        s.mobile_server = None;
        let e = s
            .check()
            .expect_err("phones without a mobile server")
            .to_string();
        assert!(
            e.contains("through the mobile server, and there is none"),
            "{e}"
        );
    }

    #[test]
    fn absurd_counts_are_refused() {
        let small = load_preset("small").expect("preset");
        assert_eq!(small.scaled(1000.0).check(), Ok(()), "32 000 cameras");
        let e = small.scaled(4000.0).check().expect_err("128 000 cameras");
        assert!(e.to_string().contains("has 128000 cameras"), "{e}");

        let mut s = small.clone();
        s.recorders[0].cameras[0].count = 200_000;
        let e = s.check().expect_err("too many cameras").to_string();
        assert!(
            e.contains("has 200000 cameras; a recording server has 1 to 100000"),
            "{e}"
        );

        let mut s = small.clone();
        s.viewers[0].count = 100_001;
        let e = s.check().expect_err("too many viewers").to_string();
        assert!(e.contains("\"operator-2x2\" has 100001 members"), "{e}");

        let mut s = small;
        s.queue_frames = 0;
        let e = s.check().expect_err("no queue").to_string();
        assert!(
            e.ends_with("queue_frames must be 1 to 1000000, not 0"),
            "{e}"
        );
    }
}
