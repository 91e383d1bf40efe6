//! A throwaway PostgreSQL cluster for tests: Debian's server binaries, `initdb` and `pg_ctl` as the
//! `postgres` user when run as root, a data directory under the temp dir and a loopback port of its
//! own. Built only for tests (`cfg(test)` or feature `testing`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster; stopped (immediately) and removed when dropped.
pub struct TestCluster {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
}

/// The newest installed server's binaries (`/usr/lib/postgresql/<version>/bin`), if any.
pub fn server_binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

/// `program args...`, as the postgres user when we are root (the server refuses to run as root).
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A fresh directory under the temp dir for one server, owned by the user the server runs as.
fn server_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saksi-pg-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp directory");
    if is_root() {
        let status = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .expect("chown runs");
        assert!(status.success(), "chown of {}", dir.display());
    }
    dir
}

/// A self-signed CA (`NAME.key`, `NAME.crt`) in `dir`; returns the certificate's path.
pub fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ])
        .args(["-days", "2", "-subj", &format!("/CN=saksi test {name}")])
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(format!("{name}.crt"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl TestCluster {
    /// Starts a cluster, or says why not and returns `None` (no server installed).
    pub fn start(name: &str) -> Option<TestCluster> {
        let Some(bin) = server_binaries() else {
            eprintln!(
                "skipped: no PostgreSQL server under /usr/lib/postgresql (.ci/run installs Debian's postgresql)"
            );
            return None;
        };
        let dir = server_dir(name);
        let cluster = TestCluster {
            port: free_port(),
            bin,
            dir,
        };
        cluster.init_and_start();
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("db")
    }

    fn init_and_start(&self) {
        let out = as_server_user(&self.bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .arg("-D")
            .arg(self.data())
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.pg_ctl_start();
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let out = as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
    }

    /// A streaming standby of this cluster (pg_basebackup -R), started on a port of its own. With
    /// `synchronous`, this cluster then waits for it on every commit (synchronous_standby_names),
    /// set after the copy so that the standby, once promoted, does not wait for a standby of its own.
    pub fn start_standby(&self, name: &str, synchronous: bool) -> TestCluster {
        let dir = server_dir(name);
        let standby = TestCluster {
            port: free_port(),
            bin: self.bin.clone(),
            dir,
        };
        let out = as_server_user(&self.bin.join("pg_basebackup"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-R", "-X", "stream", "--no-sync", "--checkpoint=fast", "-D"])
            .arg(standby.data())
            .output()
            .expect("pg_basebackup runs");
        assert!(
            out.status.success(),
            "pg_basebackup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        standby.pg_ctl_start();
        if synchronous {
            let mut client = postgres::Client::connect(&self.url(), postgres::NoTls)
                .expect("connecting to the primary");
            client
                .batch_execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
                .expect("naming the synchronous standby");
            client
                .batch_execute("SELECT pg_reload_conf()")
                .expect("reloading the configuration");
            // Wait until the standby streams synchronously, so the next commit depends on it.
            for _ in 0..300 {
                let row = client
                    .query_opt(
                        "SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'",
                        &[],
                    )
                    .expect("reading pg_stat_replication");
                if row.is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        standby
    }

    /// Promotes a standby to primary (`pg_ctl promote`), waiting until it accepts writes.
    pub fn promote(&self) {
        let out = as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-w", "promote"])
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl promote: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once (no checkpoint: as if the host lost power, short of the disk's cache).
    pub fn kill(&self) {
        let _ = as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .output();
    }

    /// Starts it again after [`TestCluster::kill`].
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// Turns TLS on and refuses plain TCP connections from then on: a CA and a server certificate
    /// for 127.0.0.1 are made with `openssl`, and the server is reloaded. Returns the CA's file,
    /// for `sslrootcert=`, or `None` (saying so) where `openssl` is not installed. Make databases
    /// first: `new_database` connects in plain text.
    pub fn require_tls(&self) -> Option<PathBuf> {
        if Command::new("openssl").arg("version").output().is_err() {
            eprintln!(
                "skipped: no openssl to make the test certificates with (.ci/run installs it)"
            );
            return None;
        }
        let tls = self.dir.join("tls");
        std::fs::create_dir_all(&tls).expect("the tls directory");
        let ca = make_ca(&tls, "ca");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .current_dir(&tls)
                .args(args)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::write(tls.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&tls)
                .status()
                .expect("chown runs");
            assert!(status.success());
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            tls.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let hba = self.data().join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(
            &hba,
            format!(
                "hostnossl all all 127.0.0.1/32 reject\nhostssl all all 127.0.0.1/32 trust\n{rules}"
            ),
        )
        .unwrap();
        let mut client = postgres::Client::connect(&self.url(), postgres::NoTls)
            .expect("connecting to the test cluster");
        for setting in [
            format!(
                "ALTER SYSTEM SET ssl_cert_file = '{}'",
                tls.join("server.crt").display()
            ),
            format!(
                "ALTER SYSTEM SET ssl_key_file = '{}'",
                tls.join("server.key").display()
            ),
            "ALTER SYSTEM SET ssl = on".to_string(),
        ] {
            client.batch_execute(&setting).expect("setting TLS");
        }
        client
            .batch_execute("SELECT pg_reload_conf()")
            .expect("reloading");
        // The reload is asynchronous: wait until plain connections are refused.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while postgres::Client::connect(&self.url(), postgres::NoTls).is_ok() {
            assert!(std::time::Instant::now() < deadline, "TLS never came on");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(ca)
    }

    /// A connection string for the `postgres` database.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?connect_timeout=10",
            self.port
        )
    }

    /// A connection string for a new, empty database `name` (created here).
    pub fn new_database(&self, name: &str) -> String {
        let mut client = postgres::Client::connect(&self.url(), postgres::NoTls)
            .expect("connecting to the test cluster");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("creating a database");
        format!(
            "postgres://postgres@127.0.0.1:{}/{name}?connect_timeout=10",
            self.port
        )
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
