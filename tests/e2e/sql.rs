//! `drdsurv sql`: the statistics functions from the command line (issue 4 acceptance).

use crate::{drdsurv, text};

/// Newcombe's example through the binary: 0.2553… and 0.3662…, in all three formats.
#[test]
fn sql_prints_newcombes_wilson_interval() {
    let q = "SELECT wilson_lower(81, 263, 0.95) AS lo, wilson_upper(81, 263, 0.95) AS hi";
    let o = drdsurv(&["sql", q]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("| 0.25528851") && out.contains("| 0.36620957"),
        "{out}"
    );
    let o = drdsurv(&["sql", q, "--format", "csv"]);
    let out = text(&o.stdout);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("lo,hi"));
    let vals: Vec<f64> = lines
        .next()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        (vals[0] - 0.2553).abs() < 5e-5 && (vals[1] - 0.3662).abs() < 5e-5,
        "{out}"
    );
    let o = drdsurv(&["sql", q, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!((v[0]["lo"].as_f64().unwrap() - 0.2553).abs() < 5e-5, "{v}");
}

/// A bad argument is an error naming the function and the argument, with exit code 1; an
/// unknown format is a usage error (2).
#[test]
fn sql_errors_name_the_function_and_argument() {
    let o = drdsurv(&["sql", "SELECT wilson_lower(5, 3, 0.95)"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("wilson_lower: argument 'x'"), "{err}");
    let o = drdsurv(&["sql", "SELECT 1", "--format", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("unknown format 'xml'"));
}
