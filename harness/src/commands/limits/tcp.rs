//! The loopback TCP ceiling: one plaintext connection on 127.0.0.1, unpaced, large writes,
//! a sending and a receiving thread of its own — what `iperf3` measures, on the same
//! machine in the same sitting.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::report::limits::TcpCeiling;

/// Bytes per write and per read (`iperf3`'s default for TCP).
const CHUNK: usize = 128 * 1024;

/// Sends for a warm-up (a fifth of the budget, at least 20 ms, uncounted) and then for
/// `budget`; the receiver counts the bytes that arrive after the warm-up until the end.
pub(super) fn measure(budget: Duration) -> anyhow::Result<TcpCeiling> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("binding 127.0.0.1:0")?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let warmup = (budget / 5).max(Duration::from_millis(20));
    // Connected before the sending thread starts, so that a failure cannot leave the
    // accept below waiting.
    let mut s = TcpStream::connect(addr).context("connecting to 127.0.0.1")?;
    s.set_nodelay(true).context("TCP_NODELAY")?;
    let sender = std::thread::Builder::new()
        .name("limits-tcp-send".into())
        .spawn(move || -> std::io::Result<()> {
            let chunk = vec![0x5a_u8; CHUNK];
            let end = Instant::now() + warmup + budget;
            while Instant::now() < end {
                s.write_all(&chunk)?;
            }
            s.shutdown(Shutdown::Write)
        })
        .context("starting the sending thread")?;
    let (mut conn, _) = listener.accept().context("accepting the connection")?;
    let mut buf = vec![0u8; CHUNK];
    let first = Instant::now();
    let mut counting: Option<Instant> = None;
    let mut bytes = 0u64;
    loop {
        let n = conn.read(&mut buf).context("reading")?;
        if n == 0 {
            break;
        }
        match counting {
            Some(_) => bytes += n as u64,
            None if first.elapsed() >= warmup => counting = Some(Instant::now()),
            None => {}
        }
    }
    let window = counting.map_or(Duration::ZERO, |t| t.elapsed());
    match sender.join() {
        Ok(r) => r.context("sending")?,
        Err(_) => anyhow::bail!("the sending thread panicked"),
    }
    let window_s = window.as_secs_f64();
    if bytes == 0 || window_s <= 0.0 {
        anyhow::bail!("no byte arrived after the warm-up of the loopback TCP measurement");
    }
    Ok(TcpCeiling {
        bytes,
        window_s,
        goodput_mbit_s: bytes as f64 * 8.0 / window_s / 1e6,
        write_bytes: CHUNK as u64,
        method: format!(
            "one TCP connection on 127.0.0.1 (TCP_NODELAY), {} KiB writes and reads on two \
             threads, unpaced; bytes read after a {} ms warm-up over the time they took",
            CHUNK / 1024,
            warmup.as_millis()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cross_and_the_goodput_follows_from_them() {
        let t = measure(Duration::from_millis(30)).expect("measured");
        assert!(t.bytes > 0 && t.window_s > 0.0);
        let expect = t.bytes as f64 * 8.0 / t.window_s / 1e6;
        assert!((t.goodput_mbit_s - expect).abs() < 1e-9 * expect);
    }
}
