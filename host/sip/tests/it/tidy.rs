//! Architecture invariant: this crate never does I/O and never reads a
//! clock. The compiler already keeps tokio out (it is not a dependency);
//! this test keeps std's sockets, sleeps and clocks out of `src/` as well
//! (test files, named `tests.rs`, may read the clock to get a start time).

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "Instant::now",
    "SystemTime::now",
    "UdpSocket",
    "TcpStream",
    "TcpListener",
    "thread::sleep",
    "std::fs",
    "tokio",
];

fn visit(dir: &Path, offenders: &mut Vec<String>) {
    let entries = std::fs::read_dir(dir).expect("src/ is readable");
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            visit(&path, offenders);
        } else if path.extension().is_some_and(|e| e == "rs") && path.file_name().is_some_and(|n| n != "tests.rs") {
            let text = std::fs::read_to_string(&path).expect("source is UTF-8");
            for word in FORBIDDEN {
                if text.contains(word) {
                    offenders.push(format!("{}: {word}", path.display()));
                }
            }
        }
    }
}

#[test]
fn core_is_sans_io() {
    let mut offenders = Vec::new();
    visit(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut offenders);
    assert!(
        offenders.is_empty(),
        "I/O or clock reads in the sans-IO core: {offenders:#?}"
    );
}
