//! The host around the plugins: isolation, concurrency, capacity, metrics,
//! the disk cache.

use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use changewire_plugin_artifacts as artifacts;
use serde_json::json;

use super::*;

// ----- isolation, concurrency, reuse -----------------------------------

#[test]
fn hostile_plugins_do_not_disturb_others() {
    let hostile = [
        artifacts::HOSTILE_LOOP_FOREVER,
        artifacts::HOSTILE_ALLOC_UNBOUNDED,
        artifacts::HOSTILE_PANIC,
        artifacts::HOSTILE_HUGE_OUTPUT,
    ];
    let good = plugin(artifacts::FILTER_BY_FIELD);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads: Vec<_> = hostile
        .into_iter()
        .map(|path| {
            let p = plugin(path);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut failures = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || failures == 0 {
                    assert!(p.call(&input("{}")).is_err(), "{path} succeeded");
                    failures += 1;
                }
                failures
            })
        })
        .collect();
    for _ in 0..300 {
        assert_eq!(
            good.call(&input(r#"{"equals":"complete"}"#)).ok(),
            Some(PluginOutcome::Deliver {
                body: None,
                headers: vec![]
            })
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in threads {
        assert!(t.join().expect("no panic") >= 1);
    }
}

#[test]
fn concurrent_calls_from_many_threads() {
    let limits = PluginLimits {
        max_warm_instances: 3,
        ..PluginLimits::default()
    };
    let host = PluginHost::new(limits).expect("host");
    let p = host
        .compile(&read(artifacts::REDACT_FIELDS))
        .expect("compiles");
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    let body = format!(
                        r#"{{"event_id":{i},"data":{{"new":{{"email":"t{t}-{i}@x.io","n":{i}}}}}}}"#
                    );
                    let v = deliver_body(
                        p.call(&input_with(&body, r#"{"fields":["email"]}"#))
                            .expect("redacts"),
                    );
                    assert_eq!(
                        v,
                        json!({"event_id": i, "data": {"new": {"email": "[redacted]", "n": i}}})
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no panic");
    }
    let warm = p.warm_instances();
    assert!((1..=3).contains(&warm), "{warm} warm instances");
}

#[test]
fn capacity_exhaustion_is_an_error_not_a_hang() {
    // Two slots, at most one warm: the warm instance plus one more can run.
    // Each looping call holds its slot for the 500 ms time limit, ample
    // for the third call to arrive while both are busy.
    let limits = PluginLimits {
        total_instance_slots: 2,
        max_warm_instances: 1,
        time_limit_ms: 500,
        ..PluginLimits::default()
    };
    let host = PluginHost::new(limits).expect("host");
    let looping = host
        .compile(&read(artifacts::HOSTILE_LOOP_FOREVER))
        .expect("compiles");
    let barrier = Arc::new(Barrier::new(3));
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let (p, b) = (looping.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                b.wait();
                p.call(&input("{}"))
            })
        })
        .collect();
    barrier.wait();
    std::thread::sleep(Duration::from_millis(100));
    let err = looping.call(&input("{}")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no free plugin instance slot (all 2 are in use); retry later"
    );
    assert!(!err.is_plugin_fault());
    for t in busy {
        assert!(matches!(
            t.join().expect("no panic"),
            Err(Error::Timeout { .. })
        ));
    }
    // Slots come back once those calls end.
    assert!(matches!(
        looping.call(&input("{}")),
        Err(Error::Timeout { .. })
    ));
}

/// A plugin that never returns shares its thread: on a single-threaded
/// runtime, another task keeps running while the plugin loops (it yields at
/// every epoch tick), and the loop is still stopped at its time limit.
#[test]
fn a_looping_plugin_yields_its_thread_to_other_tasks() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let host = PluginHost::new(PluginLimits {
        time_limit_ms: 200,
        ..PluginLimits::default()
    })
    .expect("host");
    let looping = host
        .compile(&read(artifacts::HOSTILE_LOOP_FOREVER))
        .expect("compiles");
    let (result, ran_meanwhile) = runtime.block_on(async {
        let beats = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let heart = {
            let beats = Arc::clone(&beats);
            tokio::spawn(async move {
                loop {
                    beats.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            })
        };
        let result = looping.call_async(&input("{}")).await;
        let ran = beats.load(std::sync::atomic::Ordering::SeqCst);
        heart.abort();
        (result, ran)
    });
    assert!(
        matches!(result, Err(Error::Timeout { limit_ms: 200 })),
        "{result:?}"
    );
    // Without yields the other task could not run before the call ended
    // (one thread); with them it runs at every tick, ~100 times in 200 ms.
    assert!(
        ran_meanwhile >= 10,
        "the other task ran {ran_meanwhile} times"
    );
}

#[test]
fn plugins_outlive_their_host() {
    let host = PluginHost::new(PluginLimits {
        time_limit_ms: 20,
        ..PluginLimits::default()
    })
    .expect("host");
    let looping = host
        .compile(&read(artifacts::HOSTILE_LOOP_FOREVER))
        .expect("compiles");
    drop(host);
    // The epoch ticker lives as long as any plugin: the loop is still stopped.
    assert!(matches!(
        looping.call(&input("{}")),
        Err(Error::Timeout { limit_ms: 20 })
    ));
}

// ----- metrics ------------------------------------------------------------

/// A recorder that counts, by `name{label=value,...}`.
#[derive(Default)]
struct CountingRecorder {
    values: Arc<Mutex<HashMap<String, f64>>>,
}

struct Slot(Arc<Mutex<HashMap<String, f64>>>, String);

impl Slot {
    fn add(&self, v: f64) {
        *self
            .0
            .lock()
            .expect("not poisoned")
            .entry(self.1.clone())
            .or_default() += v;
    }
}
impl metrics::CounterFn for Slot {
    fn increment(&self, value: u64) {
        self.add(value as f64);
    }
    fn absolute(&self, _: u64) {}
}
impl metrics::HistogramFn for Slot {
    // Histograms count their samples.
    fn record(&self, _: f64) {
        self.add(1.0);
    }
}

impl CountingRecorder {
    fn slot(&self, key: &metrics::Key) -> Arc<Slot> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Slot(
            Arc::clone(&self.values),
            format!("{}{{{}}}", key.name(), labels.join(",")),
        ))
    }
    fn get(&self, key: &str) -> f64 {
        self.values
            .lock()
            .expect("not poisoned")
            .get(key)
            .copied()
            .unwrap_or(0.0)
    }
}

impl metrics::Recorder for CountingRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.slot(key))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::from_arc(self.slot(key))
    }
}

#[test]
fn metrics_count_calls_by_outcome() {
    // Own compiles: instance counts must not depend on other tests.
    let filter = host()
        .compile(&read(artifacts::FILTER_BY_FIELD))
        .expect("compiles");
    let trapping = host()
        .compile(&read(artifacts::HOSTILE_UNREACHABLE))
        .expect("compiles");
    let recorder = CountingRecorder::default();
    // A thread-local recorder: only this test's calls are counted.
    metrics::with_local_recorder(&recorder, || {
        assert!(filter.call(&input(r#"{"equals":"complete"}"#)).is_ok());
        assert!(filter.call(&input(r#"{"equals":"complete"}"#)).is_ok());
        assert!(filter.call(&input(r#"{"equals":"failed"}"#)).is_ok());
        assert!(trapping.call(&input("{}")).is_err());
    });
    assert_eq!(
        recorder.get("changewire_plugin_calls_total{outcome=deliver}"),
        2.0
    );
    assert_eq!(
        recorder.get("changewire_plugin_calls_total{outcome=drop}"),
        1.0
    );
    assert_eq!(
        recorder.get("changewire_plugin_calls_total{outcome=trap}"),
        1.0
    );
    assert_eq!(
        recorder.get("changewire_plugin_call_duration_seconds{}"),
        4.0
    );
    // The trapped instance was replaced by a fresh one on its next call.
    metrics::with_local_recorder(&recorder, || {
        assert!(trapping.call(&input("{}")).is_err());
    });
    assert_eq!(
        recorder.get("changewire_plugin_instances_created_total{}"),
        1.0
    );
}

// ----- disk cache ---------------------------------------------------------

#[cfg(unix)] // inode numbers prove the artifact was not rewritten
#[test]
fn disk_cache_survives_restart() {
    use std::os::unix::fs::MetadataExt;

    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = read(artifacts::ADD_HEADER);
    let cached_files = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .collect()
    };
    // A leftover of another engine version is pruned at startup.
    std::fs::write(dir.path().join("00-0000000000000000.cwasm"), b"old").expect("write");

    let first = PluginHost::with_disk_cache(PluginLimits::default(), dir.path()).expect("host");
    let p = first.compile(&wasm).expect("compiles");
    let files = cached_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    assert!(name.starts_with(&format!("{}-", p.sha256())), "{name}");
    let inode = std::fs::metadata(&files[0]).expect("meta").ino();
    drop((p, first));

    // A restart loads the artifact instead of recompiling (which would write
    // a new file, i.e. a new inode), and the plugin works.
    let second = PluginHost::with_disk_cache(PluginLimits::default(), dir.path()).expect("host");
    let p = second.compile(&wasm).expect("loads");
    assert_eq!(std::fs::metadata(&files[0]).expect("meta").ino(), inode);
    let out = p.call(&input(r#"{"headers":{"x-a":"1"}}"#)).expect("calls");
    assert_eq!(header(&out, "x-a").as_deref(), Some("1"));

    // A corrupt artifact is discarded and rebuilt, not loaded.
    std::fs::write(&files[0], b"changewire-plugin-cache 1\ngarbage").expect("corrupt");
    let p = second.compile(&wasm).expect("recompiles");
    assert!(p.call(&input(r#"{"headers":{"x-a":"1"}}"#)).is_ok());
    assert!(std::fs::metadata(&files[0]).expect("meta").len() > 1000);
}

/// A compiled artifact of `add-header` named as the cache would name the
/// artifact of `slack-format` (a plugin swapped for another: loading it
/// would make `slack-format` add headers), written to `dest`. Returns
/// `slack-format`'s bytes.
#[cfg(unix)]
fn swapped_artifact(mut dest: impl FnMut(&str) -> std::path::PathBuf) -> Vec<u8> {
    let honest = tempfile::tempdir().expect("tempdir");
    let host = PluginHost::with_disk_cache(PluginLimits::default(), honest.path()).expect("host");
    host.compile(&read(artifacts::ADD_HEADER))
        .expect("compiles");
    let artifact = std::fs::read_dir(honest.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("add-header was cached");
    let name = artifact.file_name().and_then(|n| n.to_str()).expect("name");
    let fingerprint = name.split_once('-').expect("sha-fingerprint").1;
    let slack = read(artifacts::SLACK_FORMAT);
    let slack_sha = crate::host::hex(&<sha2::Sha256 as sha2::Digest>::digest(&slack));
    std::fs::copy(&artifact, dest(&format!("{slack_sha}-{fingerprint}"))).expect("plant");
    slack
}

/// Whether `p` is the real `slack-format` (and not add-header loaded in
/// its place from a planted artifact).
#[cfg(unix)]
fn is_slack_format(p: &Plugin) -> bool {
    let planted = p.call(&input(r#"{"headers":{"x-planted":"1"}}"#));
    let planted_ran = planted.is_ok_and(|o| header(&o, "x-planted").is_some());
    let formatted = p
        .call(&input(r#"{"prefix":"[ION] "}"#))
        .is_ok_and(|o| deliver_body(o)["text"].is_string());
    !planted_ran && formatted
}

#[cfg(unix)]
#[test]
fn a_disk_cache_directory_writable_by_others_is_never_loaded_from() {
    use std::os::unix::fs::PermissionsExt;

    // Control: in a private directory the swapped artifact is loaded, so
    // the check below would see it.
    let private = tempfile::tempdir().expect("tempdir");
    let slack = swapped_artifact(|name| private.path().join(name));
    let host = PluginHost::with_disk_cache(PluginLimits::default(), private.path()).expect("host");
    assert!(!is_slack_format(&host.compile(&slack).expect("loads")));

    // World-writable: anyone could have planted it; it is not loaded.
    let open = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    swapped_artifact(|name| open.path().join(name));
    let host = PluginHost::with_disk_cache(PluginLimits::default(), open.path()).expect("host");
    assert!(is_slack_format(&host.compile(&slack).expect("compiles")));
    // Not used at all: nothing was written there either.
    assert_eq!(std::fs::read_dir(open.path()).expect("dir").count(), 1);
}

#[cfg(unix)]
#[test]
fn a_symlinked_artifact_in_the_disk_cache_is_not_followed() {
    let cache = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let mut link = None;
    let slack = swapped_artifact(|name| {
        let target = elsewhere.path().join("planted.cwasm");
        std::os::unix::fs::symlink(&target, cache.path().join(name)).expect("symlink");
        link = Some(cache.path().join(name));
        target
    });
    let link = link.expect("planted");
    let planted = std::fs::read(elsewhere.path().join("planted.cwasm")).expect("target");
    let host = PluginHost::with_disk_cache(PluginLimits::default(), cache.path()).expect("host");
    assert!(is_slack_format(&host.compile(&slack).expect("compiles")));
    // The link was replaced by the real artifact; its target is untouched.
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("artifact")
            .is_file()
    );
    assert_eq!(
        std::fs::read(elsewhere.path().join("planted.cwasm")).expect("target"),
        planted
    );
}

#[test]
fn plugin_and_host_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Plugin>();
    fn assert_send_sync_host<T: Send + Sync>() {}
    assert_send_sync_host::<PluginHost>();
}
