//! The CLI on `--psor file:PATH`: import a real server's export into a file, copy, delete;
//! every writing command leaves the file saved, so the next command (a new process) sees it.

use std::process::Command;

use psor_tests::{populate_all_types, unique_prefix, RedisServer};

fn psor(args: &[&str]) -> Command {
    psor_tests::cli::command(env!("CARGO_BIN_EXE_psor"), args)
}

fn run(args: &[&str]) -> (i32, String, String) {
    psor_tests::cli::output(&mut psor(args))
}

fn count(spec: &str, prefix: &str) -> u64 {
    let (code, out, err) = run(&["--psor", spec, "scan", "--prefix", prefix, "--count-only"]);
    assert_eq!(code, 0, "{err}");
    out.trim().parse().unwrap_or_else(|_| panic!("a count: {out}"))
}

#[test]
fn copy_then_delete_on_a_file_store_are_saved() {
    if psor_tests::needs_transcode_into_store("copy_then_delete_on_a_file_store_are_saved") {
        return;
    }
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ns = unique_prefix("embedded_cli");
    let (a, b) = (format!("{ns}a:"), format!("{ns}b:"));
    populate_all_types(&mut server.admin_conn(), a.as_bytes(), 90);
    let snap = dir.path().join("prod.psnap");
    let snap = snap.to_str().unwrap();
    let (code, _, err) = run(&["--psor", &server.url(), "--no-progress", "export", "--prefix", &a, "-o", snap]);
    assert_eq!(code, 0, "{err}");

    let store = dir.path().join("rehearsal.psnap");
    let spec = format!("file:{}", store.display());
    assert_eq!(count(&spec, &a), 0, "a missing file is an empty store");
    assert!(!store.exists(), "reading does not create the file");

    let (code, _, err) = run(&["--psor", &spec, "--no-progress", "--yes", "import", snap]);
    assert_eq!(code, 0, "{err}");
    assert!(store.exists());
    assert_eq!(count(&spec, &a), 90);

    let (code, out, err) =
        run(&["--psor", &spec, "--no-progress", "--json", "copy", "--prefix", &a, "--to-prefix", &b]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["psor"], spec.as_str());
    assert_eq!(count(&spec, &b), 90);

    let (code, _, err) = run(&["--psor", &spec, "--no-progress", "--yes", "delete", "--prefix", &a]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(count(&spec, &a), 0);
    assert_eq!(count(&spec, &b), 90);
    assert!(!dir.path().join("rehearsal.psnap.tmp").exists());

    // The saved file is an ordinary snapshot: it imports into a real server.
    let (code, _, err) = run(&["--psor", &server.url(), "--no-progress", "--yes", "import", store.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(&["--psor", &server.url(), "scan", "--prefix", &b, "--count-only"]);
    assert_eq!((code, out.trim()), (0, "90"));
}

#[test]
fn a_file_that_is_not_a_snapshot_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "not a snapshot").unwrap();
    let spec = format!("file:{}", path.display());
    let (code, _, err) = run(&["--psor", &spec, "scan", "--prefix", "x:"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a snapshot");
}
