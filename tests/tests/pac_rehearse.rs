//! `psor rehearse` as a library: the procedure on an embedded store, from a sample PAC and
//! from a copy of a live PAC, whose source must be byte-identical afterwards.

use std::sync::Arc;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::engine::EngineOptions;
use psor_core::layout::{Catalog, PacMode, PacName, ProductVersion};
use psor_core::pac::{self, Observer, RehearsalSource, RehearseOptions, SampleOptions, Step};
use psor_core::progress::Progress;
use psor_tests::{keyspace_digest, RedisServer};

struct Record(Vec<String>);

impl Observer for Record {
    fn start(&mut self, _: &'static str, _: &str) -> Arc<Progress> {
        Arc::new(Progress::new())
    }
    fn done(&mut self, step: &Step) {
        self.0.push(step.procedure_step.to_string());
    }
}

fn file_store(dir: &std::path::Path) -> Psor {
    let spec = PsorSpec::parse(&format!("file:{}", dir.join("store.psnap").display())).unwrap();
    Psor::connect(&spec, &ConnectOptions::default()).unwrap()
}

fn v(s: &str) -> ProductVersion {
    ProductVersion::new(s).unwrap()
}

#[test]
fn a_sample_pac_goes_through_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let pac = PacName::new("MyPAC").unwrap();
    let opts = RehearseOptions {
        store: file_store(dir.path()),
        pac: pac.clone(),
        to: v("9.0"),
        source: RehearsalSource::Sample { version: v("8.0"), keys: 3_000 },
        backup: dir.path().join("backup.psnap"),
    };
    let mut seen = Record(Vec::new());
    let r = pac::rehearse(&opts, &Catalog::builtin(), &EngineOptions::default(), &mut seen).unwrap();
    assert_eq!(seen.0, ["setup", "5", "6", "10", "12", "13", "14", "14"]);
    assert_eq!((r.from.as_str(), r.to.as_str()), ("8.0", "9.0"));
    let versions = &r.final_status.pacs[0].versions;
    assert_eq!(versions.len(), 1);
    assert_eq!((versions[0].version.as_str(), versions[0].mode()), ("9.0", Some(PacMode::Running)));
    // The backup holds the old PAC whole, and reads back.
    let file = std::fs::File::open(dir.path().join("backup.psnap")).unwrap();
    let mut reader = psor_formats::SnapshotReader::open(std::io::BufReader::new(file)).unwrap();
    let backed_up = r.steps.iter().find(|s| s.name.starts_with("Remove")).unwrap().keys;
    assert_eq!(reader.verify_all().unwrap().keys, backed_up);
    assert!(backed_up > 3_000);
    // The store was saved: a new connection sees the end state.
    let again = pac::status(
        &file_store(dir.path()),
        &Catalog::builtin(),
        Some(&pac),
        &EngineOptions::default(),
        Arc::new(Progress::new()),
    )
    .unwrap();
    assert_eq!(again.pacs[0].versions.len(), 1);
}

#[test]
fn a_live_pac_is_copied_and_never_written() {
    let server = RedisServer::start();
    let live = Psor::connect(&PsorSpec::parse(&server.url()).unwrap(), &ConnectOptions::default()).unwrap();
    let (cat, pac) = (Catalog::builtin(), PacName::new("MyPAC").unwrap());
    let sample = SampleOptions { keys: 1_500, regions: 2, mode: PacMode::Running, large_values: 1 };
    pac::sample(&live, &cat, &pac, &v("8.0"), &sample, Arc::new(Progress::new())).unwrap();
    pac::sample(&live, &cat, &PacName::new("MyPAC2").unwrap(), &v("8.0"), &sample, Arc::new(Progress::new())).unwrap();
    let before = keyspace_digest(&mut server.admin_conn(), b"");

    let dir = tempfile::tempdir().unwrap();
    let opts = RehearseOptions {
        store: file_store(dir.path()),
        pac: pac.clone(),
        to: v("9.0"),
        source: RehearsalSource::Live(live),
        backup: dir.path().join("backup.psnap"),
    };
    let r = pac::rehearse(&opts, &cat, &EngineOptions::default(), &mut Record(Vec::new())).unwrap();
    assert_eq!(keyspace_digest(&mut server.admin_conn(), b""), before, "the rehearsal wrote to its source");
    assert_eq!(r.steps[0].keys, 1_500 + 4, "the whole PAC (tables, record, registry, 2 version records) was copied");
    assert_eq!(r.final_status.pacs.len(), 1, "only MyPAC was copied, not MyPAC2");
    assert_eq!(r.final_status.pacs[0].versions[0].version.as_str(), "9.0");
}
