//! The server under hostile load: slow and silent connections, many addresses, few descriptors.
//! Every test here is bounded and stops by itself; attackers connect from 127.0.0.2 and up (the
//! whole 127/8 block is loopback on Linux), the citizen from 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::{gen_and_init, get_json, http, Server, TempDir};

/// Opens `count` connections to `server`, spread over `addresses` source addresses (127.0.0.2...);
/// every other one sends a request head one byte at a time (slowloris), the rest stay silent. Holds
/// them until `stop`; reports how many it opened through `opened`.
fn attack(
    server: SocketAddr,
    count: usize,
    addresses: u8,
    stop: Arc<AtomicBool>,
    opened: std::sync::mpsc::Sender<usize>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut streams = Vec::new();
            for i in 0..count {
                let source = Ipv4Addr::new(127, 0, 0, 2 + (i % addresses as usize) as u8);
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).unwrap();
                let connect = tokio::time::timeout(Duration::from_secs(2), socket.connect(server));
                if let Ok(Ok(stream)) = connect.await {
                    streams.push((i % 2 == 0, stream));
                }
            }
            let _ = opened.send(streams.len());
            let head = b"GET /api/v1/regions HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) {
                for (slow, stream) in streams.iter_mut() {
                    if *slow {
                        let byte = head.get(sent).copied().unwrap_or(b'a');
                        let _ = tokio::time::timeout(
                            Duration::from_millis(5),
                            stream.write_all(&[byte]),
                        )
                        .await;
                    }
                }
                sent += 1;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
    })
}

fn serve_with_fd_limit(data: &str, descriptors: u64, extra: &[&str]) -> Server {
    let mut command = crate::util::serve_command(data, &["--rate-limit", "0"]);
    command.args(extra);
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: descriptors,
                rlim_max: descriptors,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Server::spawn_command(command, "serving on ")
}

fn address(server: &Server) -> SocketAddr {
    server
        .base
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_thousand_slow_and_silent_connections_do_not_stop_a_citizen() {
    let dir = TempDir::new("hostile");
    let election = dir.path("election");
    let data = dir.path("data");
    gen_and_init(
        &election,
        &data,
        &["--tps", "60", "--seed", "8", "--fault-rate", "0"],
    );
    let forms: Vec<String> = std::fs::read_to_string(dir.0.join("election/forms.ndjson"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    // 128 descriptors, as in the report that found every legitimate request timing out.
    let server = serve_with_fd_limit(
        &data,
        128,
        &["--header-timeout", "4", "--idle-timeout", "6"],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (opened, count) = std::sync::mpsc::channel();
    let attacker = attack(address(&server), 1000, 50, stop.clone(), opened);
    let opened = count.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(opened >= 500, "the attack opened only {opened} connections");

    // While they are held open, the citizen submits and reads, each within a few seconds.
    for (n, form) in forms.iter().take(3).enumerate() {
        let started = Instant::now();
        let (status, _, body) = http(
            "POST",
            &format!("{}/api/v1/forms", server.base),
            form.as_bytes(),
        );
        assert_eq!(
            status,
            201,
            "submission {n}: {}",
            String::from_utf8_lossy(&body)
        );
        let national = get_json(&format!("{}/api/v1/regions", server.base));
        assert_eq!(national["tally"]["tps_reported"], n as u64 + 1);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
}

#[test]
fn silent_and_slow_connections_are_closed_by_the_header_deadline() {
    let dir = TempDir::new("hostile-timeouts");
    let election = dir.path("election");
    let data = dir.path("data");
    gen_and_init(
        &election,
        &data,
        &["--tps", "20", "--seed", "8", "--fault-rate", "0"],
    );
    let server = Server::serve(
        &data,
        &[
            "--header-timeout",
            "2",
            "--idle-timeout",
            "3",
            "--max-connections-per-address",
            "4",
        ],
    );
    let target = address(&server);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let connect = |last: u8| async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket
                .bind(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)),
                    0,
                ))
                .unwrap();
            socket.connect(target).await.unwrap()
        };
        let started = Instant::now();
        let mut silent = connect(70).await;
        let mut slow = connect(71).await;
        // A keep-alive connection that answered one request, then goes quiet.
        let mut idle = connect(72).await;
        idle.write_all(b"GET /api/v1/log HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 65536];
        let n = idle.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        let dribble = async {
            for byte in b"GET /api/v1/log HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaa" {
                if slow.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(8), dribble).await;
        for (what, stream) in [
            ("silent", &mut silent),
            ("slow", &mut slow),
            ("idle", &mut idle),
        ] {
            // Closed: EOF (or a reset), well before the 8 s the slow client would have taken.
            let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await;
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => {}
                Ok(Ok(n)) => {
                    // A 408 first is fine; then the close.
                    assert!(
                        buf[..n].starts_with(b"HTTP/1.1 408"),
                        "{what}: {:?}",
                        &buf[..n]
                    );
                }
                Err(_) => panic!("{what}: still open after {:?}", started.elapsed()),
            }
        }
        // Headers complete, then silence in the body: closed by the idle deadline (3 s here), well
        // before the 10 s request deadline.
        let mut stalled = connect(74).await;
        stalled
            .write_all(b"POST /api/v1/forms HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            .await
            .unwrap();
        let waited = Instant::now();
        let read = tokio::time::timeout(Duration::from_secs(8), stalled.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a stalled body: {read:?}"
        );
        assert!(
            waited.elapsed() < Duration::from_secs(6),
            "{:?}",
            waited.elapsed()
        );
        // Per-address cap: a fifth connection from one address is closed at once.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(connect(73).await);
        }
        let mut fifth = connect(73).await;
        let read = tokio::time::timeout(Duration::from_secs(2), fifth.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    });
    // And the server still answers.
    assert!(get_json(&format!("{}/api/v1/log", server.base))["checkpoint"]["size"].is_u64());
}
