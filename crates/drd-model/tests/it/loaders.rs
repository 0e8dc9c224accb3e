//! Reference loaders: the shipped files load, and bad input is rejected naming the file, row,
//! column and value.

use drd_model::reference::*;
use drd_model::{EspBand, ModelError, Sex};

use crate::reference_file;

fn msg<T: std::fmt::Debug>(r: Result<T, ModelError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn shipped_partnerships_and_utla_layout() {
    let (n, b) = reference_file("partnerships_2021.csv");
    let p = load_partnerships(&n, b.as_slice(), "2021").unwrap();
    assert_eq!(p.len(), 152);
    assert_eq!(p.get("E06000053").unwrap().name, "Isles of Scilly");
    assert_eq!(p.get("E09000001").unwrap().region_name, "London");
    assert!(
        p.all().iter().all(|x| x.comparator_group.is_some()),
        "every partnership has a comparator group"
    );
    // The shared utla_2021.csv header is accepted as it is.
    let utla = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/utla_2021.csv"
    ));
    if let Ok(bytes) = utla {
        let u = load_partnerships("utla_2021.csv", bytes.as_slice(), "2021").unwrap();
        assert_eq!(u.len(), 152);
        assert!(u.all().iter().all(|x| x.comparator_group.is_none()));
        for (a, b) in u.all().iter().zip(p.all()) {
            assert_eq!(
                (&a.code, &a.name, &a.region_code),
                (&b.code, &b.name, &b.region_code)
            );
        }
    }
    let ons = "UTLA21CD,UTLA21NM,RGN21CD,RGN21NM\nE06000001,Hartlepool,E12000001,North East\n";
    assert_eq!(
        load_partnerships("ons.csv", ons.as_bytes(), "2021")
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn partnerships_bad_input() {
    let head = "code,name,region_code,region_name,comparator_group\n";
    let e = msg(load_partnerships("p.csv", format!("{head}E06000001,Hartlepool,E12000001,North East,CG01\nE0600002,Middlesbrough,E12000001,North East,CG01\n").as_bytes(), "2021"));
    assert!(
        e.contains("p.csv")
            && e.contains("row 2")
            && e.contains("line 3")
            && e.contains("column 'code'")
            && e.contains("'E0600002'"),
        "{e}"
    );
    let e = msg(load_partnerships("p.csv", format!("{head}E06000001,Hartlepool,E12000001,North East,\nE06000001,Hartlepool,E12000001,North East,\n").as_bytes(), "2021"));
    assert!(
        e.contains("row 2") && e.contains("more than once") && e.contains("E06000001"),
        "{e}"
    );
    let e = msg(load_partnerships(
        "p.csv",
        format!("{head}E06000001,,E12000001,North East,\n").as_bytes(),
        "2021",
    ));
    assert!(
        e.contains("row 1") && e.contains("column 'name'") && e.contains("blank"),
        "{e}"
    );
    let e = msg(load_partnerships(
        "p.csv",
        format!("{head}E06000001,A,E12000001,North East,\nE06000002,B,E12000001,North-East,\n")
            .as_bytes(),
        "2021",
    ));
    assert!(
        e.contains("row 2") && e.contains("region_name") && e.contains("North-East"),
        "{e}"
    );
    let e = msg(load_partnerships(
        "p.csv",
        "code,name\nE06000001,Hartlepool\n".as_bytes(),
        "2021",
    ));
    assert!(
        e.contains("p.csv")
            && e.contains("region_code")
            && e.contains("region_name")
            && e.contains("missing"),
        "{e}"
    );
    let e = msg(load_partnerships(
        "p.csv",
        format!("{head}E06000001,Hartlepool,E12000001\n").as_bytes(),
        "2021",
    ));
    assert!(e.contains("p.csv") && e.contains("fields"), "{e}");
    let e = msg(load_partnerships(
        "p.csv",
        b"code,name,region_code,region_name\nE06000001,Hartl\xe9pool,E12000001,North East\n"
            .as_slice(),
        "2021",
    ));
    assert!(e.contains("UTF-8"), "{e}");
}

#[test]
fn population_long_layout() {
    let ok = "code,year,sex,age_band,population\nE06000001,2024,M,0-4,2810\nE06000001,2024,female,90+,120\n";
    let rows = load_population("pop.csv", ok.as_bytes()).unwrap();
    assert_eq!(rows[0].sex, Sex::Male);
    assert_eq!(rows[1].age_band, EspBand::parse("90+").unwrap());
    let e = msg(load_population(
        "pop.csv",
        "code,year,sex,age_band,population\nE06000001,2024,U,0-4,10\n".as_bytes(),
    ));
    assert!(
        e.contains("row 1") && e.contains("column 'sex'") && e.contains("'U'"),
        "{e}"
    );
    let e = msg(load_population(
        "pop.csv",
        "code,year,sex,age_band,population\nE06000001,2024,M,0-5,10\n".as_bytes(),
    ));
    assert!(
        e.contains("column 'age_band'") && e.contains("'0-5'"),
        "{e}"
    );
    let e = msg(load_population(
        "pop.csv",
        "code,year,sex,age_band,population\nE06000001,2024,M,0-4,-3\n".as_bytes(),
    ));
    assert!(
        e.contains("column 'population'") && e.contains("'-3'"),
        "{e}"
    );
    let e = msg(load_population(
        "pop.csv",
        "code,year,sex,age_band,population\nE06000001,2024,M,0-4,3\nE06000001,2024,1,0-4,4\n"
            .as_bytes(),
    ));
    assert!(e.contains("row 2") && e.contains("duplicate"), "{e}");
    let e = msg(load_population(
        "pop.csv",
        "code,year,sex,age_band,population\nE06000001,24,M,0-4,3\n".as_bytes(),
    ));
    assert!(e.contains("column 'year'") && e.contains("'24'"), "{e}");
}

fn wide_csv(extra_head: &str, extra: &str, ages: impl Fn(u32) -> String) -> String {
    let head: Vec<String> = (0..=90).map(|a| a.to_string()).collect();
    let vals: Vec<String> = (0..=90).map(ages).collect();
    format!(
        "Code,Name,Geography{extra_head},{}\nE06000001,Hartlepool,Unitary Authority{extra},{}\n",
        head.join(","),
        vals.iter()
            .map(|v| format!("\"{v}\""))
            .collect::<Vec<_>>()
            .join(",")
    )
}

#[test]
fn population_ons_wide_layout() {
    // Single years 0..=90 with thousands separators; bands are sums of five single years.
    let csv = wide_csv(",All ages", ",\"95,911\"", |a| {
        if a == 0 {
            "1,001".into()
        } else {
            (1000 + a).to_string()
        }
    });
    let total: u64 = 1001 + (1..=90).map(|a| 1000 + a as u64).sum::<u64>();
    assert_eq!(total, 95_096);
    let e = msg(load_population_ons_wide(
        "mye.csv",
        csv.as_bytes(),
        Some(2022),
        Some(Sex::Female),
    ));
    assert!(
        e.contains("column 'all_ages'") && e.contains("95911") && e.contains("95096"),
        "{e}"
    );
    let csv = wide_csv(",All ages", ",\"95,096\"", |a| {
        if a == 0 {
            "1,001".into()
        } else {
            (1000 + a).to_string()
        }
    });
    let rows =
        load_population_ons_wide("mye.csv", csv.as_bytes(), Some(2022), Some(Sex::Female)).unwrap();
    assert_eq!(rows.len(), 19);
    assert_eq!(rows[0].population, 1001 + 1001 + 1002 + 1003 + 1004);
    assert_eq!(rows[18].population, 1090, "90 means 90+");
    assert_eq!(rows.iter().map(|r| r.population).sum::<u64>(), total);
    assert!(rows.iter().all(|r| r.sex == Sex::Female && r.year == 2022));
    // Sex and year as columns (ONS coding 1 = male).
    let csv = wide_csv(",sex,mid_year", ",1,2021", |_| "5".into());
    let rows = load_population_ons_wide("mye.csv", csv.as_bytes(), None, None).unwrap();
    assert!(rows.iter().all(|r| r.sex == Sex::Male && r.year == 2021));
    let e = msg(load_population_ons_wide(
        "mye.csv",
        wide_csv("", "", |_| "5".into()).as_bytes(),
        Some(2021),
        None,
    ));
    assert!(e.contains("sex"), "{e}");
    let e = msg(load_population_ons_wide(
        "mye.csv",
        wide_csv("", "", |a| if a == 47 { "n/a".into() } else { "5".into() }).as_bytes(),
        Some(2021),
        Some(Sex::Male),
    ));
    assert!(
        e.contains("row 1") && e.contains("column '47'") && e.contains("'n/a'"),
        "{e}"
    );
    let e = msg(load_population_ons_wide(
        "mye.csv",
        "Code,0,1,2\nE06000001,1,2,3\n".as_bytes(),
        Some(2021),
        Some(Sex::Male),
    ));
    assert!(e.contains("missing: 3, 4, 5"), "{e}");
}

#[test]
fn population_ons_long_layout() {
    // 2022+ ONS downloads: one row per area, sex (1/2) and single year, one column per year.
    let mut csv =
        String::from("ladcode21,laname21,country,sex,age,population_2021,population_2022\n");
    for sex in [1, 2] {
        for age in 0..=90 {
            csv.push_str(&format!(
                "E06000001,Hartlepool,E,{sex},{age},\"1,{:03}\",{}\n",
                age,
                2000 + age
            ));
        }
    }
    let rows = load_population_ons_wide("mye22.csv", csv.as_bytes(), None, None).unwrap();
    assert_eq!(rows.len(), 2 * 2 * 19);
    let cell = |y: i32, s: Sex, b: &str| {
        rows.iter()
            .find(|r| r.year == y && r.sex == s && r.age_band == EspBand::parse(b).unwrap())
            .unwrap()
            .population
    };
    assert_eq!(
        cell(2021, Sex::Male, "0-4"),
        1000 + 1001 + 1002 + 1003 + 1004
    );
    assert_eq!(cell(2022, Sex::Female, "90+"), 2090);
    let bad = csv.replace(
        "E06000001,Hartlepool,E,2,47,",
        "E06000001,Hartlepool,E,2,147,",
    );
    let e = msg(load_population_ons_wide(
        "mye22.csv",
        bad.as_bytes(),
        None,
        None,
    ));
    assert!(
        e.contains("row 139") && e.contains("column 'age'") && e.contains("'147'"),
        "{e}"
    );
    let dup = format!("{csv}E06000001,Hartlepool,E,1,0,5,5\n");
    let e = msg(load_population_ons_wide(
        "mye22.csv",
        dup.as_bytes(),
        None,
        None,
    ));
    assert!(e.contains("row 183") && e.contains("appears twice"), "{e}");
}

#[test]
fn pwid_estimates() {
    let rows = load_pwid(
        "pwid.csv",
        "code,year,estimated_pwid\nE06000001,2024,412.5\n".as_bytes(),
    )
    .unwrap();
    assert_eq!(rows[0].estimated_pwid, 412.5);
    let e = msg(load_pwid(
        "pwid.csv",
        "code,year,estimated_pwid\nE06000001,2024,0\n".as_bytes(),
    ));
    assert!(
        e.contains("row 1")
            && e.contains("estimated_pwid")
            && e.contains("'0'")
            && e.contains("positive"),
        "{e}"
    );
    let e = msg(load_pwid(
        "pwid.csv",
        "code,year,estimated_pwid\nE06000001,2024,5\nE06000001,2024,6\n".as_bytes(),
    ));
    assert!(e.contains("row 2") && e.contains("two estimates"), "{e}");
}

#[test]
fn substances_bad_input() {
    let head = "name,synonyms,group,controlled_class,icd10_t_code,valid_from,valid_to\n";
    let e = msg(load_substances(
        "s.csv",
        format!("{head}heroin,,opiates,A,T40.1,1900-01-01,\n").as_bytes(),
    ));
    assert!(
        e.contains("row 1")
            && e.contains("column 'group'")
            && e.contains("'opiates'")
            && e.contains("heroin_morphine"),
        "{e}"
    );
    let e = msg(load_substances(
        "s.csv",
        format!("{head}heroin,,heroin_morphine,D,T40.1,1900-01-01,\n").as_bytes(),
    ));
    assert!(
        e.contains("column 'controlled_class'") && e.contains("'D'"),
        "{e}"
    );
    let e = msg(load_substances(
        "s.csv",
        format!("{head}heroin,,heroin_morphine,A,X42,1900-01-01,\n").as_bytes(),
    ));
    assert!(
        e.contains("column 'icd10_t_code'") && e.contains("'X42'"),
        "{e}"
    );
    let e = msg(load_substances("s.csv", format!("{head}pregabalin,,gabapentinoids,,,1900-01-01,2019-04-30\npregabalin,Lyrica,gabapentinoids,C,,2019-04-01,\n").as_bytes()));
    assert!(e.contains("row 2") && e.contains("overlap"), "{e}");
    let e = msg(load_substances(
        "s.csv",
        format!("{head}heroin,,heroin_morphine,A,T40.1,2020-01-01,2019-01-01\n").as_bytes(),
    ));
    assert!(
        e.contains("column 'valid_to'") && e.contains("before"),
        "{e}"
    );
    let e = msg(load_substances(
        "s.csv",
        format!("{head}heroin,,heroin_morphine,A,T40.1,31/02/2020,\n").as_bytes(),
    ));
    assert!(
        e.contains("column 'valid_from'") && e.contains("'31/02/2020'"),
        "{e}"
    );
}

#[test]
fn case_definitions_bad_input() {
    let head = "definition,icd10_from,icd10_to,requires_controlled_substance,requires_t_codes,excluded,valid_from,valid_to\n";
    let e = msg(load_case_definitions(
        "c.csv",
        format!("{head}ons_drug_misuse,X44,X40,true,,false,2001-01-01,\n").as_bytes(),
    ));
    assert!(e.contains("row 1") && e.contains("X44-X40"), "{e}");
    let e = msg(load_case_definitions(
        "c.csv",
        format!("{head}ons_drug_misuse,F11,X40,true,,false,2001-01-01,\n").as_bytes(),
    ));
    assert!(e.contains("F11-X40"), "{e}");
    let e = msg(load_case_definitions(
        "c.csv",
        format!("{head}ons_drug_misuse,X4,X44,true,,false,2001-01-01,\n").as_bytes(),
    ));
    assert!(e.contains("'X4'"), "{e}");
    let e = msg(load_case_definitions(
        "c.csv",
        format!("{head}emcdda,X41,X42,false,T40.1;T4O.2,false,2001-01-01,\n").as_bytes(),
    ));
    assert!(
        e.contains("column 'requires_t_codes'") && e.contains("'T4O.2'"),
        "{e}"
    );
    let e = msg(load_case_definitions(
        "c.csv",
        format!("{head}ONS misuse,X41,X42,false,,false,2001-01-01,\n").as_bytes(),
    ));
    assert!(
        e.contains("column 'definition'") && e.contains("'ONS misuse'"),
        "{e}"
    );
    let e = msg(load_case_definitions(
        "c.csv",
        format!("{head}x,X41,X42,maybe,,false,2001-01-01,\n").as_bytes(),
    ));
    assert!(
        e.contains("column 'requires_controlled_substance'") && e.contains("'maybe'"),
        "{e}"
    );
}

#[test]
fn standard_population() {
    let (n, b) = reference_file("esp2013.csv");
    let esp = load_standard_population(&n, b.as_slice()).unwrap();
    let w: Vec<u32> = esp.iter().map(|(_, w)| *w as u32).collect();
    assert_eq!(
        w,
        drd_model::ESP2013_WEIGHTS,
        "the shipped CSV agrees with the built-in weights"
    );
    let e = msg(load_standard_population(
        "esp.csv",
        "age_band,weight\n0-4,5000\n".as_bytes(),
    ));
    assert!(e.contains("missing band(s): 5-9"), "{e}");
    let e = msg(load_standard_population(
        "esp.csv",
        "age_band,weight\n0-4,-1\n".as_bytes(),
    ));
    assert!(e.contains("row 1") && e.contains("'-1'"), "{e}");
}
