//! Identifiers never reach telemetry: ingest the synthetic files of the most faulty submitter
//! of each source while every span goes through the OpenTelemetry SDK's in-memory exporter
//! and every log line into a buffer, then scan both (and the store) for every identifier in
//! the extracts with the independent Python scanner. Also checks the per-file span carries
//! what operators need: submitter, source, row counts and outcome.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex};

use drd_ingest::Ingestor;
use drd_model::{Coded, Source};
use drd_store::Store;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn spans_and_logs_carry_counts_but_no_identifier() {
    let _alone = crate::TELEMETRY.blocking_write();
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("gen");
    let cfg = drd_synth::Config {
        seed: 11,
        years: 2,
        ..drd_synth::Config::default()
    };
    let manifest = drd_synth::generate(&cfg, &generated).unwrap();

    // Per source, the submitter with a file rejected whole and the most planted row faults.
    let mut score: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    for rec in &manifest.files {
        let e = score
            .entry((rec.source, rec.submitter.as_str()))
            .or_default();
        e.0 += usize::from(rec.expect_rejected.is_some());
    }
    for f in &manifest.faults {
        let rec = manifest.files.iter().find(|r| r.path == f.file).unwrap();
        score
            .entry((rec.source, rec.submitter.as_str()))
            .or_default()
            .1 += 1;
    }
    let mut chosen = Vec::new();
    for source in ["coroner", "top", "nsp"] {
        let sub = score
            .iter()
            .filter(|((s, _), _)| *s == source)
            .max_by_key(|(_, n)| **n)
            .map(|((_, sub), _)| *sub)
            .unwrap();
        chosen.push((source, sub.to_string()));
    }

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let logs = Buf::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::registry()
        .with(drd_telemetry::otel_layer(&provider))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .with_writer(move || sink.clone()),
        );
    let store_dir = dir.path().join("store");
    let store = Store::open(store_dir.to_str().unwrap()).unwrap();
    let key = crate::key();
    let partnerships = drd_ingest::defaults::partnerships();
    let substances = drd_ingest::defaults::substances();
    let ing = Ingestor {
        store: &store,
        key: &key,
        partnerships: &partnerships,
        substances: &substances,
        xlsx_limit: 10 << 20,
        batch_rows: 4096,
        received: crate::received(),
        progress: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut receipts = String::new();
    let mut files = 0;
    tracing::subscriber::with_default(subscriber, || {
        // Recompute every cached callsite interest now that this dispatcher is in place.
        tracing::callsite::rebuild_interest_cache();
        for (source, sub) in &chosen {
            let areas: HashSet<String> = manifest
                .submitters
                .iter()
                .find(|s| s.id == *sub)
                .unwrap()
                .areas
                .iter()
                .cloned()
                .collect();
            for rec in manifest.files.iter().filter(|r| &r.submitter == sub) {
                let src = Source::parse(source).unwrap();
                let r = rt
                    .block_on(ing.ingest(src, sub, &areas, &generated.join(&rec.path)))
                    .unwrap();
                receipts.push_str(&serde_json::to_string(&r).unwrap());
                receipts.push('\n');
                files += 1;
            }
        }
    });
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();

    // The per-file span: one per file, with counts and outcome, and nothing else of the row.
    let per_file: Vec<_> = spans.iter().filter(|s| s.name == "ingest_file").collect();
    assert_eq!(per_file.len(), files, "one span per file");
    let attr = |s: &opentelemetry_sdk::trace::SpanData, k: &str| {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.to_string())
    };
    let accepted: Vec<_> = per_file
        .iter()
        .filter(|s| attr(s, "outcome").as_deref() == Some("accepted"))
        .collect();
    assert!(!accepted.is_empty());
    for s in &accepted {
        for k in [
            "submitter",
            "source",
            "rows_read",
            "rows_accepted",
            "rows_quarantined",
        ] {
            assert!(attr(s, k).is_some(), "span lacks {k}: {:?}", s.attributes);
        }
    }
    assert!(
        per_file
            .iter()
            .any(|s| attr(s, "outcome").as_deref() == Some("rejected")),
        "the chosen submitters include a whole-file rejection"
    );

    // Everything the telemetry holds, as text, for the scanner.
    let mut dump = String::new();
    for s in &spans {
        dump.push_str(&format!("span {} status={:?}", s.name, s.status));
        for kv in &s.attributes {
            dump.push_str(&format!(" {}={}", kv.key, kv.value));
        }
        dump.push('\n');
        for e in s.events.iter() {
            dump.push_str(&format!("  event {}", e.name));
            for kv in &e.attributes {
                dump.push_str(&format!(" {}={}", kv.key, kv.value));
            }
            dump.push('\n');
        }
    }
    assert!(dump.contains("rows_read="), "{dump}");
    let spans_txt = dir.path().join("spans.txt");
    let logs_txt = dir.path().join("logs.jsonl");
    let receipts_txt = dir.path().join("receipts.jsonl");
    std::fs::write(&spans_txt, &dump).unwrap();
    std::fs::write(&logs_txt, &*logs.0.lock().unwrap()).unwrap();
    std::fs::write(&receipts_txt, &receipts).unwrap();
    assert!(
        std::fs::metadata(&logs_txt).unwrap().len() > 0,
        "logs were captured"
    );

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/python/scan_identifiers.py");
    let scan = |files: &[&std::path::Path]| {
        let o = std::process::Command::new("python3")
            .arg(&script)
            .arg(&generated)
            .arg(&store_dir)
            .args(files)
            .output()
            .unwrap_or_else(|e| panic!("python3: {e}; run tests/run.sh"));
        (
            o.status.success(),
            format!(
                "{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    let (ok, out) = scan(&[&spans_txt, &logs_txt, &receipts_txt]);
    assert!(
        ok && out.contains("; 0 hit(s)") && out.contains("positive control"),
        "{out}"
    );

    // Control: the same span dump with one NHS number from an extract planted is caught.
    let plain = manifest
        .files
        .iter()
        .find(|r| r.source == "top" && r.path.ends_with(".csv") && r.expect_rejected.is_none())
        .unwrap();
    let text = std::fs::read_to_string(generated.join(&plain.path)).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .trim_start_matches('\u{feff}')
        .split(',')
        .collect();
    let col = header.iter().position(|h| *h == "nhs_number").unwrap();
    let nhs = lines
        .map(|l| l.split(',').nth(col).unwrap_or("").to_string())
        .find(|v| v.chars().filter(char::is_ascii_digit).count() == 10)
        .unwrap();
    let planted = dir.path().join("spans-planted.txt");
    std::fs::write(&planted, format!("{dump}span leaked nhs={nhs}\n")).unwrap();
    let (ok, out) = scan(&[&planted]);
    assert!(
        !ok && out.contains("LEAK") && out.contains("nhs_number"),
        "the planted NHS number was not found: {out}"
    );
}
