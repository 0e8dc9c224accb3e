//! At least 30 hand-checked deaths classified with the shipped `reference/case_definitions.csv`
//! and `reference/substances.csv`. Each expectation cites the domain.md line it follows.

use chrono::NaiveDate;
use drd_model::casedef::{EMCDDA_SELECTION_B, ONS_DRUG_MISUSE, ONS_DRUG_POISONING};
use drd_model::reference::{load_case_definitions, load_substances};
use drd_model::{CaseDefinitions, Icd10, SubstanceGroup, SubstanceLookup};

use crate::reference_file;

fn shipped() -> (CaseDefinitions, SubstanceLookup) {
    let (n, b) = reference_file("case_definitions.csv");
    let defs = load_case_definitions(&n, b.as_slice()).unwrap();
    let (n, b) = reference_file("substances.csv");
    (defs, load_substances(&n, b.as_slice()).unwrap())
}

fn flags(
    defs: &CaseDefinitions,
    subs: &SubstanceLookup,
    cause: &str,
    implicated: &str,
    date: &str,
) -> (bool, bool, bool) {
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    let cause = Icd10::parse(cause).unwrap();
    let res = subs.resolve_list(implicated, d);
    (
        defs.meets(ONS_DRUG_POISONING, &cause, &res, d),
        defs.meets(ONS_DRUG_MISUSE, &cause, &res, d),
        defs.meets(EMCDDA_SELECTION_B, &cause, &res, d),
    )
}

/// (underlying cause as written, substances implicated, date of death, expected
/// (ons_drug_poisoning, ons_drug_misuse, emcdda_selection_b), why).
type Case = (
    &'static str,
    &'static str,
    &'static str,
    (bool, bool, bool),
    &'static str,
);

const CASES: &[Case] = &[
    (
        "X42",
        "heroin",
        "2023-05-01",
        (true, true, true),
        "1.1 X40-X44; 1.2(b) heroin is Class A; 2.3 X42 with T40.1",
    ),
    (
        "X42",
        "paracetamol",
        "2023-05-01",
        (true, false, false),
        "1.2(b) needs a controlled substance; 2.3 T39.1 is not T40/T43.6",
    ),
    (
        "X42",
        "mirtazapine",
        "2023-05-01",
        (true, false, false),
        "X42 with only a non-controlled substance is poisoning but not misuse (1.1, 1.2)",
    ),
    (
        "F10",
        "alcohol",
        "2023-05-01",
        (false, false, false),
        "1.1: F10 (alcohol) is left out of poisoning",
    ),
    (
        "F17",
        "",
        "2023-05-01",
        (false, false, false),
        "1.1: F17 (tobacco) is left out",
    ),
    (
        "F11.2",
        "heroin",
        "2023-05-01",
        (true, true, true),
        "spelling F11.2; 1.1 F11; 1.2(a) dependence; 2.3 F11",
    ),
    (
        "F13",
        "diazepam",
        "2023-05-01",
        (true, true, false),
        "F13 counts for ONS (1.1, 1.2(a)) but not Selection B (2.3: F13 not included)",
    ),
    (
        "F18",
        "",
        "2023-05-01",
        (true, true, false),
        "F18 counts for ONS but not Selection B (2.3: F18 solvents not included)",
    ),
    (
        "F12",
        "cannabis",
        "2023-05-01",
        (true, true, true),
        "1.1 F12; 2.3 cannabinoids F12",
    ),
    (
        "F19",
        "heroin;cocaine",
        "2023-05-01",
        (true, true, true),
        "1.1 F19; 2.3 multiple drugs F19",
    ),
    (
        "F16",
        "LSD",
        "2023-05-01",
        (true, true, true),
        "2.3 hallucinogens F16",
    ),
    (
        "F14",
        "",
        "2023-05-01",
        (true, true, true),
        "2.3 cocaine F14; 1.2(a) needs no substance",
    ),
    (
        "X85",
        "heroin",
        "2023-05-01",
        (true, true, false),
        "X85 counts for ONS (1.1, 1.2(b)) but not Selection B (2.3: X85 not included)",
    ),
    (
        "X85",
        "amitriptyline",
        "2023-05-01",
        (true, false, false),
        "1.1 X85; no controlled substance",
    ),
    (
        "X44",
        "methadone",
        "2023-05-01",
        (true, true, true),
        "2.3: X44 with T40.3 counts",
    ),
    (
        "X44",
        "diazepam",
        "2023-05-01",
        (true, true, false),
        "2.3: X44 without a T40.x/T43.6 substance does not count; diazepam is Class C (1.2b)",
    ),
    (
        "X64",
        "cocaine",
        "2023-05-01",
        (true, true, true),
        "2.3: X64 with T40.5",
    ),
    (
        "X64",
        "amitriptyline",
        "2023-05-01",
        (true, false, false),
        "2.3: X64 without T40/T43.6; 1.2(b) no controlled drug",
    ),
    (
        "Y14",
        "MDMA",
        "2023-05-01",
        (true, true, true),
        "2.3: Y14 with T43.6",
    ),
    (
        "Y14",
        "pregabalin",
        "2023-05-01",
        (true, true, false),
        "2.3: Y14 without T-code; pregabalin Class C since April 2019",
    ),
    (
        "X40",
        "heroin",
        "2023-05-01",
        (true, true, false),
        "2.3: X40 not included; 1.1 X40",
    ),
    (
        "X43",
        "amphetamine",
        "2023-05-01",
        (true, true, false),
        "2.3: X43 not included",
    ),
    (
        "x420",
        "fentanyl",
        "2023-05-01",
        (true, true, true),
        "spelling x420 normalises to X420, category X42",
    ),
    (
        " X42 ",
        "cocaine",
        "2023-05-01",
        (true, true, true),
        "spelling ' X42 ' is trimmed",
    ),
    (
        "X42",
        "pregabalin",
        "2018-06-01",
        (true, false, false),
        "pregabalin not controlled before 1 April 2019 (substance lookup validity)",
    ),
    (
        "X42",
        "pregabalin",
        "2019-06-01",
        (true, true, false),
        "pregabalin Class C from 1 April 2019; no T-code for gabapentinoids (1.3)",
    ),
    (
        "X45",
        "alcohol",
        "2023-05-01",
        (false, false, false),
        "1.1: X45 (alcohol) is not a drug poisoning code",
    ),
    (
        "Y12",
        "crack cocaine",
        "2023-05-01",
        (true, true, true),
        "2.3 Y12 with T40.5",
    ),
    (
        "Y13",
        "diazepam",
        "2023-05-01",
        (true, true, false),
        "1.1 Y10-Y14; 2.3 Y13 is not included",
    ),
    (
        "X62",
        "methadone",
        "2023-05-01",
        (true, true, true),
        "2.3 X62 with T40.3",
    ),
    (
        "X61",
        "MDMA",
        "2023-05-01",
        (true, true, true),
        "2.3 X61 with T43.6",
    ),
    (
        "X41",
        "cannabis",
        "2023-05-01",
        (true, true, true),
        "2.3 X41 with T40.7",
    ),
    (
        "X42",
        "mystery powder",
        "2023-05-01",
        (true, false, false),
        "formats.md 1: an unknown name is unclassified, not controlled",
    ),
    (
        "I21",
        "heroin",
        "2023-05-01",
        (false, false, false),
        "not a drug-poisoning underlying cause (1.1)",
    ),
    (
        "X42",
        "tramadol",
        "2013-01-01",
        (true, false, true),
        "tramadol not controlled before June 2014, but T40.4 counts for Selection B",
    ),
    (
        "X42",
        "tramadol",
        "2015-01-01",
        (true, true, true),
        "tramadol Class C from 10 June 2014",
    ),
    (
        "X42",
        "isotonitazene",
        "2025-11-10",
        (true, true, true),
        "nitazenes: Class A, T40.4",
    ),
    (
        "X60",
        "heroin",
        "2023-05-01",
        (true, true, false),
        "2.3: X60 not included",
    ),
    (
        "R99",
        "",
        "2023-05-01",
        (false, false, false),
        "ill-defined cause: not poisoning",
    ),
    (
        "X42",
        "co-codamol",
        "2023-05-01",
        (true, true, true),
        "compound-analgesic exclusion is off by default (1.2 [U])",
    ),
    (
        "X42",
        "Crack  Cocaine | ALCOHOL",
        "2023-05-01",
        (true, true, true),
        "substance matching ignores case and whitespace; | separates",
    ),
];

#[test]
fn hand_checked_cases() {
    let (defs, subs) = shipped();
    assert!(CASES.len() >= 30);
    let mut failures = Vec::new();
    for (cause, implicated, date, want, why) in CASES {
        let got = flags(&defs, &subs, cause, implicated, date);
        if got != *want {
            failures.push(format!(
                "{cause:?} + {implicated:?} on {date}: got {got:?}, want {want:?} ({why})"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn present_substances_never_make_misuse() {
    // formats.md §4: only substances_implicated counts. A death whose implicated list is
    // paracetamol but whose toxicology found heroin is not a misuse death: the classifier is
    // given the implicated list alone.
    let (defs, subs) = shipped();
    assert!(!flags(&defs, &subs, "X42", "paracetamol", "2023-05-01").1);
}

#[test]
fn compound_analgesic_exclusion_when_enabled() {
    let (_, b) = reference_file("case_definitions.csv");
    let text = String::from_utf8(b).unwrap().replace(
        "co-codamol;co-dydramol,false,",
        "co-codamol;co-dydramol,true,",
    );
    let defs = load_case_definitions("case_definitions (exclusion on)", text.as_bytes()).unwrap();
    let (_, subs) = shipped();
    assert_eq!(
        flags(&defs, &subs, "X42", "co-codamol", "2023-05-01"),
        (true, false, true),
        "only controlled substance is a compound analgesic"
    );
    assert_eq!(
        flags(&defs, &subs, "X42", "co-codamol;heroin", "2023-05-01"),
        (true, true, true),
        "heroin is controlled too"
    );
    assert_eq!(
        flags(&defs, &subs, "Y12", "co-dydramol", "2023-05-01"),
        (true, false, true)
    );
}

#[test]
fn substance_names_required_by_the_issue_resolve() {
    let (_, subs) = shipped();
    let d = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let names = [
        "heroin",
        "diamorphine",
        "morphine",
        "6-MAM",
        "methadone",
        "buprenorphine",
        "oxycodone",
        "tramadol",
        "codeine",
        "dihydrocodeine",
        "fentanyl",
        "carfentanil",
        "acetylfentanyl",
        "isotonitazene",
        "metonitazene",
        "protonitazene",
        "N-pyrrolidino etonitazene",
        "cocaine",
        "crack cocaine",
        "benzoylecgonine",
        "amphetamine",
        "methamphetamine",
        "MDMA",
        "ketamine",
        "diazepam",
        "alprazolam",
        "etizolam",
        "bromazolam",
        "flualprazolam",
        "pregabalin",
        "gabapentin",
        "synthetic cannabinoid receptor agonists",
        "mirtazapine",
        "amitriptyline",
        "alcohol",
        "cannabis",
    ];
    for n in names {
        let r = subs.resolve(n, d);
        assert_ne!(r.group, SubstanceGroup::Unclassified, "{n}");
    }
    assert_eq!(
        subs.resolve("  DIAMORPHINE ", d).group,
        SubstanceGroup::HeroinMorphine
    );
    assert_eq!(
        subs.resolve("N-pyrrolidinoetonitazene", d).group,
        SubstanceGroup::Nitazenes,
        "whitespace-insensitive"
    );
    assert_eq!(
        subs.resolve("crack cocaine", d).group,
        SubstanceGroup::Cocaine
    );
    // Every group of formats.md §1 has at least one substance.
    for g in SubstanceGroup::LOOKUP_GROUPS {
        assert!(
            subs.entries().iter().any(|e| e.group == g),
            "no substance in group {}",
            g.as_str()
        );
    }
    let u = subs.resolve("Mystery Powder ", d);
    assert_eq!(
        (u.group, u.name.as_str()),
        (SubstanceGroup::Unclassified, "Mystery Powder")
    );
}
