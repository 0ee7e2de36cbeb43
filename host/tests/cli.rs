//! The `pbx` binary as an admin uses it: first run, `plugins list`,
//! `plugins check`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PBX: &str = env!("CARGO_BIN_EXE_pbx");

/// Kills the PBX even when an assertion fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn first_run_creates_everything_and_plugins_list_shows_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(PBX)
        .args(["run", "--data"])
        .arg(&data)
        .env("PBX_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let pbx = Running(child);

    // Wait for the "running" log line (an event, not a sleep).
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("pbx did not start; log so far:\n{}", log.join("\n")));
        let running = line.contains("pbx running");
        log.push(line);
        if running {
            break;
        }
    }
    assert!(data.join("pbx.toml").exists());
    assert!(data.join("certs/ca/ca.pem").exists() && data.join("certs/localhost/cert.pem").exists());
    for name in [
        "dial-plan",
        "e2e-security",
        "trunk-exceptions",
        "cert-per-domain",
        "provisioning-password",
    ] {
        assert!(
            data.join("plugins").join(format!("{name}.wasm")).exists(),
            "{name}.wasm"
        );
        assert!(
            data.join("plugins").join(format!("{name}.json")).exists(),
            "{name}.json"
        );
    }
    assert_eq!(
        log.iter().filter(|l| l.contains("plugin loaded")).count(),
        5,
        "{log:#?}"
    );

    let out = Command::new(PBX)
        .args(["plugins", "list", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = String::from_utf8(out.stdout).unwrap();
    for expect in [
        "\"hook\": \"routing\"",
        "\"name\": \"plugin-dial-plan\"",
        "\"hook\": \"provisioning\"",
        "sha256",
        "\"failures\": 0",
    ] {
        assert!(list.contains(expect), "missing {expect} in {list}");
    }
    drop(pbx);
}

#[test]
fn plugins_check_accepts_the_bundle_and_refuses_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.wasm");
    std::fs::write(&good, pbx::bundle::BUNDLE[0].wasm).unwrap();
    let out = Command::new(PBX)
        .args(["plugins", "check"])
        .arg(&good)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.starts_with("OK: plugin-dial-plan") && text.contains("[routing]"),
        "{text}"
    );

    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"garbage").unwrap();
    let out = Command::new(PBX).args(["plugins", "check"]).arg(&bad).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with("REFUSED: not a WebAssembly file"), "{text}");

    let cfg = dir.path().join("bad.json");
    std::fs::write(&cfg, r#"{"extension_digits": {"min": 9, "max": 1}}"#).unwrap();
    let out = Command::new(PBX)
        .args(["plugins", "check"])
        .arg(&good)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
}
