//! Listening on Tailscale, for real: a network namespace of the test's own holds an
//! interface with a Tailscale address (100.101.102.103) and another with a LAN address
//! (each one end of a veth pair), and the real `perch serve` runs inside it. Perch finds the Tailscale
//! address, binds there when the setting says so (creating the first API key, shown
//! once), demands the key there but not on loopback, keeps `/health` open, answers its
//! MagicDNS name and refuses a foreign `Host`, is not reachable on the LAN address, lets
//! a stream on the Tailscale address finish after moving back to loopback, and then
//! refuses new connections there.
//!
//! The MagicDNS name comes from `tailscale status --json`; a stand-in `tailscale`
//! script on `PATH` answers it, as the real CLI would (no tailnet can be joined here).
//! Needs root and `ip` (iproute2), as CI has.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{curl, Server};
use perch_test_support::test_model;

const TAILSCALE_IP: &str = "100.101.102.103";
const LAN_IP: &str = "10.77.0.2";
const MAGIC_DNS: &str = "perch-box.tail1234.ts.net";

/// A network namespace, deleted when dropped.
struct Namespace(String);

impl Namespace {
    fn create() -> Namespace {
        let name = format!("perch-ts-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "delete", &name]).status();
        let ns = Namespace(name);
        for args in [
            vec!["netns", "add", &ns.0],
            vec!["-n", &ns.0, "link", "set", "lo", "up"],
            vec![
                "-n",
                &ns.0,
                "link",
                "add",
                "tailscale0",
                "type",
                "veth",
                "peer",
                "ts-peer",
            ],
            vec![
                "-n",
                &ns.0,
                "addr",
                "add",
                "100.101.102.103/32",
                "dev",
                "tailscale0",
            ],
            vec!["-n", &ns.0, "link", "set", "tailscale0", "up"],
            vec!["-n", &ns.0, "link", "set", "ts-peer", "up"],
            vec![
                "-n", &ns.0, "link", "add", "lan0", "type", "veth", "peer", "lan-peer",
            ],
            vec!["-n", &ns.0, "addr", "add", "10.77.0.2/24", "dev", "lan0"],
            vec!["-n", &ns.0, "link", "set", "lan0", "up"],
            vec!["-n", &ns.0, "link", "set", "lan-peer", "up"],
        ] {
            let status = Command::new("ip").args(&args).status().expect("run ip");
            assert!(
                status.success(),
                "`ip {}` failed: this test needs root and iproute2",
                args.join(" ")
            );
        }
        ns
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

/// A folder with the stand-in `tailscale` CLI.
fn tailscale_cli(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("tailscale");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n  ip) echo {TAILSCALE_IP} ;;\n  status) echo \
             '{{\"Self\": {{\"DNSName\": \"{MAGIC_DNS}.\", \"HostName\": \"perch-box\"}}}}' ;;\n  \
             *) exit 1 ;;\nesac\n"
        ),
    )
    .unwrap();
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&script, executable).unwrap();
    bin
}

fn port_of(server: &Server) -> String {
    server.root().rsplit(':').next().unwrap().to_owned()
}

#[test]
fn perch_listens_on_tailscale_only_when_asked_and_only_with_a_key() {
    let home = std::env::temp_dir().join(format!("perch-tailscale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    let ns = Namespace::create();
    let bin = tailscale_cli(&home);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &ns.0, env!("CARGO_BIN_EXE_perch"), "serve"])
        .args(["--port", "0", "--model"])
        .arg(test_model())
        .env("PERCH_HOME", &home)
        .env("PERCH_SECRET_STORE", "file")
        .env("PATH", &path)
        .env("HF_ENDPOINT", "http://127.0.0.1:9");
    let server = Server::spawn(command);
    let port = port_of(&server);
    let ns_name = Some(ns.0.as_str());
    let at = |ip: &str, path: &str| format!("http://{ip}:{port}{path}");
    let local = |path: &str| at("127.0.0.1", path);

    // On loopback, Tailscale is seen but not listened on.
    let network = curl(ns_name, &[&local("/api/perch/network")]).json();
    assert_eq!(network["tailscale"]["up"], true, "{network}");
    assert_eq!(network["tailscale"]["addresses"][0], TAILSCALE_IP);
    assert_eq!(network["tailscale"]["dns_name"], MAGIC_DNS);
    assert_eq!(network["key_required"], false);
    let refused = curl(ns_name, &[&at(TAILSCALE_IP, "/health")]);
    assert_eq!(refused.status, 0, "nothing listens on Tailscale yet");

    // Moving to Tailscale creates the first key and shows it once.
    let listen = |mode: &str| {
        curl(
            ns_name,
            &[
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/json",
                "-d",
                &format!(r#"{{"listen": "{mode}"}}"#),
                &local("/api/perch/settings"),
            ],
        )
    };
    let moved = listen("tailscale");
    assert_eq!(moved.status, 200, "{}", moved.body);
    let key = moved.json()["new_key"]["key"]
        .as_str()
        .expect("the first key is in the answer")
        .to_owned();
    let listed = curl(ns_name, &[&local("/api/perch/keys")]).body;
    assert!(
        listed.contains("first key") && !listed.contains(&key),
        "{listed}"
    );
    let network = curl(ns_name, &[&local("/api/perch/network")]).json();
    assert_eq!(network["key_required"], true);
    assert_eq!(
        network["urls"][0],
        format!("http://{MAGIC_DNS}:{port}"),
        "{network}"
    );

    // On the Tailscale address the key is demanded; /health stays open; loopback
    // needs none.
    let bearer = format!("Authorization: Bearer {key}");
    let models = at(TAILSCALE_IP, "/v1/models");
    assert_eq!(curl(ns_name, &[&models]).status, 401);
    assert_eq!(
        curl(
            ns_name,
            &["-H", "Authorization: Bearer perch-wrong", &models]
        )
        .status,
        401
    );
    assert_eq!(curl(ns_name, &["-H", &bearer, &models]).status, 200);
    assert_eq!(curl(ns_name, &[&at(TAILSCALE_IP, "/health")]).status, 200);
    assert_eq!(curl(ns_name, &[&local("/v1/models")]).status, 200);

    // Its MagicDNS name is answered; a foreign Host is refused.
    let named = |host: &str| {
        curl(
            ns_name,
            &[
                "-H",
                &bearer,
                "--resolve",
                &format!("{host}:{port}:{TAILSCALE_IP}"),
                &format!("http://{host}:{port}/v1/models"),
            ],
        )
        .status
    };
    assert_eq!(named(MAGIC_DNS), 200);
    assert_eq!(named("attacker.example"), 403);

    // Not reachable on the LAN address.
    assert_eq!(curl(ns_name, &[&at(LAN_IP, "/health")]).status, 0);

    // A stream on the Tailscale address outlives the move back to loopback.
    let body = r#"{"model": "SmolLM2-135M-Instruct.Q4_1", "prompt": "Once upon a time",
        "max_tokens": 250, "temperature": 0, "stream": true}"#;
    let streamed = home.join("stream.txt");
    let mut stream = Command::new("ip")
        .args(["netns", "exec", &ns.0, "curl", "-sSN", "-o"])
        .arg(&streamed)
        .args([
            "-H",
            &bearer,
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        ])
        .arg(at(TAILSCALE_IP, "/v1/completions"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::fs::read_to_string(&streamed).map_or(0, |t| t.matches("data:").count()) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the stream starts"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let back = listen("loopback");
    assert_eq!(back.status, 200, "{}", back.body);
    let at_switch = std::fs::read_to_string(&streamed).unwrap();
    assert!(
        !at_switch.contains("[DONE]"),
        "the stream was still running when the listener moved"
    );
    assert_eq!(
        curl(ns_name, &[&at(TAILSCALE_IP, "/health")]).status,
        0,
        "new connections to the Tailscale address are refused"
    );
    assert!(stream.wait().unwrap().success());
    let whole = std::fs::read_to_string(&streamed).unwrap();
    assert!(
        whole.contains("[DONE]") && whole.contains(r#""finish_reason":"length""#),
        "the stream ran to its end: {}",
        &whole[whole.len().saturating_sub(400)..]
    );
    assert_eq!(curl(ns_name, &[&local("/health")]).status, 200);
    assert!(server.stop().success());
    let _ = std::fs::remove_dir_all(&home);
}
