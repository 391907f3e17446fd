//! tansu, a Kafka-compatible broker, started by a test on a free loopback port (in memory).
//! `scripts/test.sh` installs it and passes its path as `TEST_TANSU`.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Tansu {
    child: Child,
    pub addr: SocketAddr,
}

impl Tansu {
    pub fn start() -> Tansu {
        Tansu::start_advertising(None)
    }

    /// As [`Tansu::start`], telling clients to reach it at `advertised` (a proxy in front of it).
    pub fn start_advertising(advertised: Option<SocketAddr>) -> Tansu {
        let bin = std::env::var("TEST_TANSU")
            .expect("TEST_TANSU is not set: run the tests with scripts/test.sh, which installs tansu");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let url = format!("tcp://{addr}");
        let advertised = format!("tcp://{}", advertised.unwrap_or(addr));
        let child = Command::new(bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &advertised, "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Tansu { child, addr }
    }

    /// Stops the broker's process (SIGSTOP): it holds its data but answers nothing.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets the stopped process run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill").args([sig, &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
