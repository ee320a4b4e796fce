//! The management server and its clients: logins with configuration downloads, status
//! polls, and telemetry through a WAN link, over real sockets in both modes.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use simulators::clock::RunClock;
use simulators::metrics::{LinkMetrics, Window};
use simulators::pki::{KeyType, Pki};
use simulators::role::management::{configuration, ManagementConfig, ManagementServer};
use simulators::role::rpc::{Call, RpcClient, RpcConfig};
use simulators::role::timeouts::ServerTimeouts;
use simulators::role::viewer::Endpoint;
use simulators::role::wan::{WanLink, WanProfile};
use simulators::role::RoleRuntime;
use simulators::transport::{Connector, Listener, Mode, TlsSettings};

use crate::support::{block_on, connector};

const HOST: &str = "mgmt.vms.test";
const CONFIG_BYTES: u64 = 3 * 1024 * 1024 + 123;

struct Site {
    pki: Pki,
    server_rt: RoleRuntime,
    client_rt: RoleRuntime,
    mgmt: ManagementServer,
    config: ManagementConfig,
    clock: RunClock,
    window: Arc<Window>,
    mode: Mode,
}

impl Site {
    async fn start(mode: Mode) -> Site {
        let pki = Pki::generate(&[HOST], KeyType::EcdsaP256, 1).expect("pki");
        let server_rt = RoleRuntime::new("mgmt", 1).expect("runtime");
        let client_rt = RoleRuntime::new("clients", 1).expect("runtime");
        let tls = match mode {
            Mode::Plain => None,
            Mode::Tls => Some(
                pki.server_config(HOST, &TlsSettings::default())
                    .expect("server config"),
            ),
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let listener = server_rt
            .spawn(Listener::bind(addr, tls))
            .await
            .expect("join")
            .expect("bind");
        let config = ManagementConfig {
            config_bytes: CONFIG_BYTES,
            status_reply_bytes: 2048,
            seed: 5,
            timeouts: ServerTimeouts::default(),
        };
        let mgmt = ManagementServer::start(&server_rt, vec![listener], &config).expect("start");
        let window = Arc::new(Window::default());
        let clock = RunClock::new();
        window.open(0);
        Site {
            pki,
            server_rt,
            client_rt,
            mgmt,
            config,
            clock,
            window,
            mode,
        }
    }

    fn connector(&self) -> Connector {
        connector(self.mode, &self.pki)
    }

    fn rpc(&self, addr: SocketAddr, call: Call, digest: Option<[u8; 32]>) -> RpcConfig {
        RpcConfig {
            server: Endpoint {
                addr,
                host: HOST.to_owned(),
            },
            connector: self.connector(),
            call,
            interval: Duration::from_millis(300),
            start_ns: self.clock.now_ns(),
            phase_ns: 10_000_000,
            config_digest: digest,
            meter: None,
        }
    }

    async fn run_for(&self, config: RpcConfig, how_long: Duration) -> LinkMetrics {
        let client = RpcClient::start(&self.client_rt, config, self.clock, self.window.clone());
        tokio::time::sleep(how_long).await;
        client.stop().await
    }
}

#[test]
fn configuration_downloads_arrive_whole_and_a_wrong_checksum_is_caught() {
    block_on(async {
        for mode in [Mode::Plain, Mode::Tls] {
            let site = Site::start(mode).await;
            let addr = site.mgmt.addrs()[0];
            let (_, digest) = configuration(&site.config);
            assert_eq!(digest, site.mgmt.config_digest());

            let good = site.rpc(
                addr,
                Call::Session {
                    refresh_every: Some(1),
                },
                Some(digest),
            );
            let m = site.run_for(good, Duration::from_millis(1000)).await;
            assert!(m.errors.is_empty(), "{mode}: {:?}", m.errors);
            assert!(m.frames >= 2, "{mode}: {} downloads", m.frames);
            // Each call's payload: the 64-byte login request and the whole configuration.
            assert_eq!(
                m.bytes,
                m.frames * (CONFIG_BYTES + 64),
                "{mode}: whole configurations"
            );
            // Each login is a new connection (and, with TLS, a new handshake); the last one
            // may still have been downloading when the client stopped.
            assert!(
                m.connections == m.frames || m.connections == m.frames + 1,
                "{mode}: {} connections for {} downloads",
                m.connections,
                m.frames
            );
            assert_eq!(m.transfer_us.len(), m.frames, "{mode}");
            assert_eq!(mode == Mode::Tls, m.negotiated.is_some());

            let mut wrong = digest;
            wrong[0] ^= 1;
            let bad = site.rpc(
                addr,
                Call::Session {
                    refresh_every: Some(1),
                },
                Some(wrong),
            );
            let m = site.run_for(bad, Duration::from_millis(700)).await;
            assert!(
                m.errors.get("checksum").copied().unwrap_or(0) >= 1,
                "{mode}: {:?}",
                m.errors
            );
            assert_eq!(
                m.frames, 0,
                "{mode}: a corrupt download is not counted as delivered"
            );
            assert!(site.mgmt.stats().downloads >= 3);
            drop(site.server_rt);
        }
    });
}

#[test]
fn a_session_downloads_its_configuration_once_at_login_then_only_checks_for_changes() {
    block_on(async {
        for mode in [Mode::Plain, Mode::Tls] {
            let site = Site::start(mode).await;
            let (_, digest) = configuration(&site.config);
            let session = site.rpc(
                site.mgmt.addrs()[0],
                Call::Session {
                    refresh_every: None,
                },
                Some(digest),
            );
            let m = site.run_for(session, Duration::from_millis(1300)).await;
            assert!(m.errors.is_empty(), "{mode}: {:?}", m.errors);
            // One download, at login, whole and with the right checksum (a check or a
            // download whose digest differs is an error above).
            assert_eq!(m.transfer_us.len(), 1, "{mode}: one download");
            assert_eq!(site.mgmt.stats().downloads, 1, "{mode}");
            // Then change checks, every 300 ms, each on a connection of its own: the
            // login, and at least three checks, each 64 bytes out and a 40-byte reply.
            let checks = m.frames - 1;
            assert!(checks >= 3, "{mode}: {checks} checks");
            assert_eq!(
                m.bytes,
                (CONFIG_BYTES + 64) + checks * (64 + 40),
                "{mode}: one whole configuration, then short checks"
            );
            // The last check may have been under way when the client stopped.
            let answered = site.mgmt.stats().requests;
            assert!(
                answered == m.frames || answered == m.frames + 1,
                "{mode}: {answered} answered, {} calls",
                m.frames
            );
            assert!(
                m.connections >= m.frames,
                "{mode}: {} connections",
                m.connections
            );
        }
    });
}

#[test]
fn status_polls_reuse_one_connection_and_count_every_call() {
    block_on(async {
        for mode in [Mode::Plain, Mode::Tls] {
            let site = Site::start(mode).await;
            let config = site.rpc(
                site.mgmt.addrs()[0],
                Call::Status { request_bytes: 256 },
                None,
            );
            let start = site.clock.now_ns();
            let m = site
                .run_for(config.clone(), Duration::from_millis(1000))
                .await;
            let end = site.clock.now_ns();
            assert!(m.errors.is_empty(), "{mode}: {:?}", m.errors);
            assert_eq!(m.connections, 1, "{mode}: one long-lived connection");
            // Every call due while the client ran was answered (the last may be in flight).
            let due = config.calls_due(start, end);
            assert!(
                m.frames + 1 >= due && m.frames <= due,
                "{mode}: {} of {due}",
                m.frames
            );
            assert_eq!(
                m.bytes,
                m.frames * (256 + 2048),
                "{mode}: request and reply"
            );
        }
    });
}

#[test]
fn a_wan_link_adds_its_delay_to_every_round_trip() {
    block_on(async {
        let site = Site::start(Mode::Tls).await;
        let wan_rt = RoleRuntime::new("wan", 1).expect("runtime");
        let delay = Duration::from_millis(40);
        let wan = WanLink::start(&wan_rt, site.mgmt.addrs()[0], WanProfile::delay(delay))
            .await
            .expect("wan");
        let config = site.rpc(wan.addr(), Call::Telemetry { bytes: 2048 }, None);
        let m = site.run_for(config, Duration::from_millis(1500)).await;
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert!(m.frames >= 2, "{} calls", m.frames);
        // A request and its answer each cross the WAN once: at least two one-way delays.
        let rtt_floor_us = 2 * delay.as_micros() as u64;
        assert!(
            m.latency_us.min() >= rtt_floor_us,
            "{} µs",
            m.latency_us.min()
        );
        // The TLS handshake needs at least one round trip, plus TCP's.
        assert!(
            m.handshake_us.min() >= rtt_floor_us,
            "{} µs",
            m.handshake_us.min()
        );
        wan.stop().await;
    });
}
