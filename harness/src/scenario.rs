//! What to simulate: the deployment a run builds.

use serde::Serialize;
use simulators::pki::KeyType;
use simulators::transport::TlsSettings;
use simulators::video::Profile;

/// The link a viewer retrieving live video from a recording server uses.
pub const VIEWER_RECORDER: &str = "viewer-recorder";
/// The host name of the (first) recording server.
pub const RECORDER_HOST: &str = "recorder-1.vms.test";

/// A deployment: one recording server, its cameras, and the viewers watching them.
#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    /// A name for reports.
    pub name: String,
    /// The cameras' profile.
    pub profile: Profile,
    /// Cameras on the recording server.
    pub cameras: u32,
    /// Viewers connected to it.
    pub viewers: u32,
    /// Cameras each viewer watches (viewer `i` starts at camera `i × this`, wrapping).
    pub cameras_per_viewer: u32,
    /// What TLS may negotiate when the link is encrypted.
    pub tls: TlsSettings,
    /// Key type of the servers' certificates.
    pub key: KeyType,
    /// Capacity of each connection's frame queue on the recording server, in frames.
    pub queue_frames: usize,
    /// Worker threads of the recording-server role.
    pub server_threads: usize,
    /// Worker threads of the client (viewer) role.
    pub client_threads: usize,
    /// Seed of the video model (frame sizes, phases, payload bytes).
    pub seed: u64,
}

impl Scenario {
    /// The built-in default: one recording server with 32 cameras of 1080p at 4 Mbit/s,
    /// two viewers watching 16 cameras each (a 4×4 view).
    pub fn small_site() -> Self {
        let half_the_cores = std::thread::available_parallelism()
            .map_or(1, |n| n.get() / 2)
            .max(1);
        Scenario {
            name: "default: 1 recording server, 32 × 1080p, 2 viewers × 16".to_owned(),
            profile: Profile::default_1080p(),
            cameras: 32,
            viewers: 2,
            cameras_per_viewer: 16,
            tls: TlsSettings::default(),
            key: KeyType::Rsa2048,
            queue_frames: simulators::role::recorder::DEFAULT_QUEUE_FRAMES,
            server_threads: half_the_cores,
            client_threads: half_the_cores,
            seed: 1,
        }
    }

    /// The cameras viewer `i` watches.
    pub fn viewer_cameras(&self, i: u32) -> Vec<u32> {
        let n = self.cameras.max(1);
        (0..self.cameras_per_viewer.min(n))
            .map(|k| (i * self.cameras_per_viewer + k) % n)
            .collect()
    }

    /// The load the viewers should receive, in bit/s.
    pub fn offered_bps(&self) -> f64 {
        f64::from(self.viewers * self.cameras_per_viewer.min(self.cameras))
            * self.profile.bitrate_bps as f64
    }

    /// Checks counts and the profile.
    pub fn validate(&self) -> Result<(), String> {
        self.profile.validate().map_err(|e| e.to_string())?;
        if self.cameras == 0 {
            return Err("--cameras must be at least 1".into());
        }
        if self.cameras_per_viewer == 0 {
            return Err("each viewer must watch at least one camera".into());
        }
        Ok(())
    }
}
