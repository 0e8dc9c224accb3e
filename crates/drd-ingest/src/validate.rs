//! Row validation, exactly as formats.md states each rule, and pseudonymisation.
//!
//! A row is parsed into typed values for the stored schema (`drd_model::schema`) or rejected
//! with one [`RowError`]: a reason code from the closed list, the column, and a message. For
//! identifier columns the message names the column and the rule, never the value.

use std::collections::HashSet;

use chrono::NaiveDate;
use csv::StringRecord;
use drd_model::columns::normalise_header;
use drd_model::date::{age_on, parse_date};
use drd_model::reference::Partnerships;
use drd_model::substance::split_substance_list;
use drd_model::*;

use crate::key::LinkageKey;

/// A typed value for one stored column.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    /// Null.
    Null,
    /// Text.
    S(String),
    /// Shared text (values repeated on every row of a file, cloned without copying).
    R(std::sync::Arc<str>),
    /// 32-bit integer.
    I32(i32),
    /// 64-bit integer.
    I64(i64),
    /// Float.
    F(f64),
    /// Date.
    D(NaiveDate),
    /// Boolean.
    B(bool),
    /// List of text.
    L(Vec<String>),
    /// Timestamp, microseconds since the epoch (UTC).
    Ts(i64),
}

/// Why a row was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The reason code.
    pub reason: ReasonCode,
    /// The column to blame.
    pub column: &'static str,
    /// Human-readable message naming the column (and the value, unless an identifier).
    pub message: String,
}

fn err(reason: ReasonCode, column: &'static str, message: impl Into<String>) -> RowError {
    RowError {
        reason,
        column,
        message: message.into(),
    }
}

type R<T> = Result<T, RowError>;

/// Everything the validator needs besides the row.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// Source.
    pub source: Source,
    /// Submitter id.
    pub submitter: &'a str,
    /// Linkage key.
    pub key: &'a LinkageKey,
    /// Geography vintage.
    pub partnerships: &'a Partnerships,
    /// Areas this submitter may send.
    pub authorised: &'a HashSet<String>,
    /// When the extract was received: later dates are `future_date`.
    pub received: NaiveDate,
}

/// Maps a file's header to the source's columns.
#[derive(Debug, Clone)]
pub struct HeaderMap {
    /// For each column of the source (in `Source::columns()` order), its index in the file.
    pub index: Vec<Option<usize>>,
    /// Headers the contract does not know (ignored; named in the receipt).
    pub unknown: Vec<String>,
    /// Required columns the file lacks.
    pub missing: Vec<&'static str>,
    /// A cheap signature of each column name, so a look-up by name compares one integer per
    /// column and the full name only once (it runs ~30 times for every row).
    sigs: Vec<u32>,
}

fn sig(name: &str) -> u32 {
    let b = name.as_bytes();
    let at = |i: usize| u32::from(b.get(i).copied().unwrap_or(0));
    (b.len() as u32) << 24 | at(0) << 16 | at(b.len() / 2) << 8 | at(b.len().saturating_sub(1))
}

impl HeaderMap {
    /// Normalises headers as formats.md says and maps them.
    pub fn new(source: Source, headers: &[String]) -> HeaderMap {
        let norm: Vec<String> = headers.iter().map(|h| normalise_header(h)).collect();
        let index: Vec<Option<usize>> = source
            .columns()
            .iter()
            .map(|c| norm.iter().position(|h| h == c.name))
            .collect();
        let unknown = norm
            .iter()
            .filter(|h| !h.is_empty() && source.column(h).is_none())
            .cloned()
            .collect();
        let missing = source
            .columns()
            .iter()
            .zip(&index)
            .filter(|(c, i)| c.required && i.is_none())
            .map(|(c, _)| c.name)
            .collect();
        let sigs = source.columns().iter().map(|c| sig(c.name)).collect();
        HeaderMap {
            index,
            unknown,
            missing,
            sigs,
        }
    }
}

/// One row, looked up by column name.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    rec: &'a StringRecord,
    map: &'a HeaderMap,
    source: Source,
}

impl<'a> Row<'a> {
    /// Wraps a record.
    pub fn new(rec: &'a StringRecord, map: &'a HeaderMap, source: Source) -> Row<'a> {
        Row { rec, map, source }
    }

    fn idx(&self, col: &str) -> Option<usize> {
        let s = sig(col);
        let cols = self.source.columns();
        let i = (0..cols.len()).find(|&i| self.map.sigs[i] == s && cols[i].name == col)?;
        self.map.index[i]
    }

    /// The trimmed value ("" when blank or absent).
    pub fn get(&self, col: &str) -> &'a str {
        self.idx(col)
            .and_then(|i| self.rec.get(i))
            .map_or("", str::trim)
    }

    fn is_identifier(&self, col: &str) -> bool {
        self.source.column(col).is_some_and(|c| c.identifier)
    }

    fn required(&self, col: &'static str) -> R<&'a str> {
        let v = self.get(col);
        if v.is_empty() {
            Err(err(
                ReasonCode::MissingRequiredValue,
                col,
                format!("{col} is required but blank"),
            ))
        } else {
            Ok(v)
        }
    }

    fn date(&self, col: &'static str, required: bool, received: NaiveDate) -> R<Option<NaiveDate>> {
        let v = if required {
            self.required(col)?
        } else {
            self.get(col)
        };
        if v.is_empty() {
            return Ok(None);
        }
        let d = parse_date(v).map_err(|e| {
            if self.is_identifier(col) {
                err(ReasonCode::InvalidDate, col, format!("{col} is not a valid date (expected YYYY-MM-DD or DD/MM/YYYY, on or after 1900-01-01)"))
            } else {
                err(ReasonCode::InvalidDate, col, format!("{col}: {e}"))
            }
        })?;
        if d > received {
            let shown = if self.is_identifier(col) {
                String::new()
            } else {
                format!(" ({d})")
            };
            return Err(err(
                ReasonCode::FutureDate,
                col,
                format!("{col}{shown} is after the extract was received ({received})"),
            ));
        }
        Ok(Some(d))
    }

    fn int(&self, col: &'static str, required: bool, lo: i64, hi: i64) -> R<Option<i64>> {
        let v = if required {
            self.required(col)?
        } else {
            self.get(col)
        };
        if v.is_empty() {
            return Ok(None);
        }
        let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(
                ReasonCode::InvalidNumber,
                col,
                format!("{col}: '{v}' is not a whole number"),
            ));
        }
        let n: i64 = v.parse().map_err(|_| {
            err(
                ReasonCode::OutOfRange,
                col,
                format!("{col}: '{v}' is too large"),
            )
        })?;
        if n < lo || n > hi {
            let range = if hi == i64::MAX {
                format!("{lo} or more")
            } else {
                format!("{lo} to {hi}")
            };
            return Err(err(
                ReasonCode::OutOfRange,
                col,
                format!("{col}: {v} is outside the allowed range {range}"),
            ));
        }
        Ok(Some(n))
    }

    fn number(&self, col: &'static str, lo: f64) -> R<Option<f64>> {
        let v = self.get(col);
        if v.is_empty() {
            return Ok(None);
        }
        let x: f64 = v
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite())
            .ok_or_else(|| {
                err(
                    ReasonCode::InvalidNumber,
                    col,
                    format!("{col}: '{v}' is not a number"),
                )
            })?;
        if x < lo {
            return Err(err(
                ReasonCode::OutOfRange,
                col,
                format!("{col}: {v} is below the minimum {lo}"),
            ));
        }
        Ok(Some(x))
    }

    fn code<T: Coded>(&self, col: &'static str, required: bool) -> R<Option<T>> {
        let v = if required {
            self.required(col)?
        } else {
            self.get(col)
        };
        if v.is_empty() {
            return Ok(None);
        }
        T::parse(v)
            .map(Some)
            .map_err(|e| err(ReasonCode::InvalidCode, col, format!("{col}: {e}")))
    }

    fn ynu(&self, col: &'static str) -> R<V> {
        let v = self.get(col);
        let y = YesNoUnknown::parse_or_unknown(v)
            .map_err(|e| err(ReasonCode::InvalidCode, col, format!("{col}: {e}")))?;
        Ok(y.as_bool().map_or(V::Null, V::B))
    }

    fn area(&self, col: &'static str, ctx: &Ctx<'_>) -> R<String> {
        let v = self.required(col)?;
        let code = GssCode::parse_area(v)
            .map_err(|e| err(ReasonCode::InvalidGssCode, col, format!("{col}: {e}")))?;
        if ctx.partnerships.get(code.as_str()).is_none() {
            return Err(err(
                ReasonCode::UnknownArea,
                col,
                format!(
                    "{col}: {code} is not a partnership in the {} geography",
                    ctx.partnerships.vintage
                ),
            ));
        }
        if !ctx.authorised.contains(code.as_str()) {
            return Err(err(
                ReasonCode::NotAuthorisedForArea,
                col,
                format!(
                    "{col}: submitter {} is not authorised to send data for {code}",
                    ctx.submitter
                ),
            ));
        }
        Ok(code.to_string())
    }

    fn nhs(&self) -> R<Option<NhsNumber>> {
        let v = self.get("nhs_number");
        if v.is_empty() {
            return Ok(None);
        }
        NhsNumber::parse(v)
            .map(Some)
            .map_err(|e| err(ReasonCode::InvalidNhsNumber, "nhs_number", e.to_string()))
    }

    fn revision(&self) -> R<i32> {
        Ok(self
            .int("revision", false, 1, i64::from(i32::MAX))?
            .unwrap_or(1) as i32)
    }
}

fn opt_i32(x: Option<i64>) -> V {
    x.map_or(V::Null, |v| V::I32(v as i32))
}

fn opt_i64(x: Option<i64>) -> V {
    x.map_or(V::Null, V::I64)
}

fn opt_date(x: Option<NaiveDate>) -> V {
    x.map_or(V::Null, V::D)
}

fn list(x: &str) -> V {
    let l = split_substance_list(x);
    if l.is_empty() { V::Null } else { V::L(l) }
}

/// A validated row: the values of the stored columns after the provenance columns, plus what
/// the receipt needs to know.
#[derive(Debug, Clone)]
pub struct Valid {
    /// `revision`.
    pub revision: i32,
    /// `extract_date`.
    pub extract_date: Option<NaiveDate>,
    /// Values of the source-specific columns, in schema order.
    pub values: Vec<V>,
    /// Whether `person_id` is null.
    pub unlinkable: bool,
}

/// Validates one row of any source.
pub fn validate(row: Row<'_>, ctx: &Ctx<'_>) -> R<Valid> {
    match ctx.source {
        Source::Coroner => coroner(row, ctx),
        Source::Top => top(row, ctx),
        Source::Nsp => nsp(row, ctx),
    }
}

fn age_at(dob: Option<NaiveDate>, event: NaiveDate) -> R<Option<u32>> {
    match dob {
        None => Ok(None),
        Some(b) if b > event => Err(err(
            ReasonCode::DateOrder,
            "date_of_birth",
            "date_of_birth is after the date of the event",
        )),
        Some(b) => match age_on(b, event) {
            Some(a) if a <= 120 => Ok(Some(a)),
            _ => Err(err(
                ReasonCode::OutOfRange,
                "date_of_birth",
                "date_of_birth gives an age over 120 at the date of the event",
            )),
        },
    }
}

fn band(age: Option<u32>) -> V {
    age.and_then(|a| EspBand::from_age(a).ok())
        .map_or(V::Null, |b| V::S(b.label()))
}

fn coroner(row: Row<'_>, ctx: &Ctx<'_>) -> R<Valid> {
    let rec = ctx.received;
    let case_ref = row.required("case_ref")?;
    let coroner_area = row.required("coroner_area")?;
    let revision = row.revision()?;
    let extract_date = row.date("extract_date", false, rec)?;
    let nhs = row.nhs()?;
    let dob = row.date("date_of_birth", false, rec)?;
    let age_col = row.int("age", false, 0, 120)?;
    let sex: Sex = row.code("sex", true)?.unwrap_or(Sex::Unknown);
    let area = row.area("residence_area", ctx)?;
    let postcode = row.get("postcode");
    let district = if postcode.is_empty() {
        None
    } else {
        Some(
            postcode_district(postcode)
                .map_err(|e| err(ReasonCode::InvalidPostcode, "postcode", e.to_string()))?,
        )
    };
    let dod = row
        .date("date_of_death", true, rec)?
        .unwrap_or(NaiveDate::MIN);
    let inquest = row.date("date_of_inquest", false, rec)?;
    let place: Option<PlaceOfDeath> = row.code("place_of_death", false)?;
    let cause = match row.get("underlying_cause_icd10") {
        "" => None,
        v => Some(Icd10::parse(v).map_err(|e| {
            err(
                ReasonCode::InvalidCode,
                "underlying_cause_icd10",
                format!("underlying_cause_icd10: {e}"),
            )
        })?),
    };
    let conclusion: Option<Conclusion> = row.code("conclusion", false)?;
    let ynu: Vec<V> = ["known_drug_user", "injecting_history", "in_treatment"]
        .iter()
        .map(|c| row.ynu(c))
        .collect::<R<_>>()?;
    let prison = row.int("released_from_prison_days", false, 0, 365)?;
    let ynu2: Vec<V> = ["naloxone_administered", "alone_at_time"]
        .iter()
        .map(|c| row.ynu(c))
        .collect::<R<_>>()?;
    let withdrawn = YesNo::parse_or_no(row.get("withdrawn")).map_err(|e| {
        err(
            ReasonCode::InvalidCode,
            "withdrawn",
            format!("withdrawn: {e}"),
        )
    })?;
    if let Some(i) = inquest
        && i < dod
    {
        return Err(err(
            ReasonCode::DateOrder,
            "date_of_inquest",
            format!("date_of_inquest {i} is before date_of_death {dod}"),
        ));
    }
    let age = match age_at(dob, dod)? {
        Some(a) => Some(a),
        None => age_col.map(|a| a as u32),
    };
    if age.is_none() {
        return Err(err(
            ReasonCode::MissingAgeAndDob,
            "age",
            "neither age nor date_of_birth is given",
        ));
    }
    let person_id = match (&nhs, dob) {
        (Some(n), _) => Some(ctx.key.person_from_nhs(n)),
        (None, Some(b)) if !row.get("surname").is_empty() && !row.get("forenames").is_empty() => {
            Some(
                ctx.key
                    .person_from_names(row.get("surname"), row.get("forenames"), b, sex),
            )
        }
        _ => None,
    };
    let mut values = vec![
        V::S(ctx.key.reference(ctx.submitter, case_ref)),
        V::S(coroner_area.to_string()),
        person_id.clone().map_or(V::Null, V::S),
        opt_i32(age.map(i64::from)),
        band(age),
        V::S(sex.code().to_string()),
        V::S(area),
        district.map_or(V::Null, V::S),
        V::D(dod),
        opt_date(inquest),
        opt_i32(inquest.map(|i| (i - dod).num_days())),
        place.map_or(V::Null, |p| V::S(p.code().into())),
        cause.map_or(V::Null, |c| V::S(c.to_string())),
        conclusion.map_or(V::Null, |c| V::S(c.code().into())),
        list(row.get("substances_implicated")),
        list(row.get("substances_present")),
    ];
    values.extend(ynu);
    values.push(opt_i32(prison));
    values.extend(ynu2);
    values.push(V::B(withdrawn == YesNo::Yes));
    Ok(Valid {
        revision,
        extract_date,
        values,
        unlinkable: person_id.is_none(),
    })
}

use drd_model::schema::{NSP_OPTIONAL_COUNTS as NSP_OPTIONAL, TOP_SUBSTANCE_DAYS as TOP_DAYS};

fn top(row: Row<'_>, ctx: &Ctx<'_>) -> R<Valid> {
    let rec = ctx.received;
    let provider = row.required("provider_code")?;
    let area = row.area("partnership_code", ctx)?;
    let client_ref = row.required("client_ref")?;
    let nhs = row.nhs()?;
    let dob = row.date("date_of_birth", true, rec)?;
    let sex: Sex = row.code("sex", true)?.unwrap_or(Sex::Unknown);
    let start = row
        .date("episode_start", true, rec)?
        .unwrap_or(NaiveDate::MIN);
    let top_date = row.date("top_date", true, rec)?.unwrap_or(NaiveDate::MIN);
    let stage: Stage = row.code("stage", true)?.unwrap_or(Stage::Start);
    let revision = row.revision()?;
    let mut days = Vec::with_capacity(16);
    for c in TOP_DAYS {
        days.push(opt_i32(row.int(c, false, 0, 28)?));
    }
    let units = row.number("alcohol_units_per_day", 0.0)?;
    let injected = row.int("injected_days", false, 0, 28)?;
    let shared = row.ynu("shared_equipment")?;
    let mut crime = Vec::new();
    for c in ["shoplifting_days", "selling_drugs_days", "theft_days"] {
        crime.push(opt_i32(row.int(c, false, 0, 28)?));
    }
    let assault = row.ynu("assault")?;
    let mut scores = Vec::new();
    for c in ["psych_health", "phys_health", "quality_of_life"] {
        scores.push(opt_i32(row.int(c, false, 0, 20)?));
    }
    for c in ["paid_work_days", "education_days"] {
        scores.push(opt_i32(row.int(c, false, 0, 28)?));
    }
    let housing = row.ynu("acute_housing_problem")?;
    let eviction = row.ynu("risk_of_eviction")?;
    let exit: Option<ExitReason> = row.code("exit_reason", false)?;
    if exit.is_some() && stage != Stage::Exit {
        return Err(err(
            ReasonCode::InvalidCode,
            "exit_reason",
            format!(
                "exit_reason '{}' is only allowed on exit TOPs, but stage is {}",
                row.get("exit_reason"),
                stage.code()
            ),
        ));
    }
    if top_date < start {
        return Err(err(
            ReasonCode::DateOrder,
            "top_date",
            format!("top_date {top_date} is before episode_start {start}"),
        ));
    }
    if let Some(b) = dob
        && b > start
    {
        return Err(err(
            ReasonCode::DateOrder,
            "date_of_birth",
            "date_of_birth is after episode_start",
        ));
    }
    let age = age_at(dob, top_date)?;
    let person_id = nhs.as_ref().map(|n| ctx.key.person_from_nhs(n));
    let mut values = vec![
        V::S(provider.to_string()),
        V::S(area),
        V::S(ctx.key.reference(ctx.submitter, client_ref)),
        person_id.clone().map_or(V::Null, V::S),
        opt_i32(age.map(i64::from)),
        band(age),
        V::S(sex.code().to_string()),
        V::D(start),
        V::D(top_date),
        V::S(stage.code().to_string()),
    ];
    values.extend(days);
    values.push(units.map_or(V::Null, V::F));
    values.push(opt_i32(injected));
    values.push(shared);
    values.extend(crime);
    values.push(assault);
    values.extend(scores);
    values.push(housing);
    values.push(eviction);
    values.push(exit.map_or(V::Null, |e| V::S(e.code().into())));
    Ok(Valid {
        revision,
        extract_date: None,
        values,
        unlinkable: person_id.is_none(),
    })
}

fn nsp(row: Row<'_>, ctx: &Ctx<'_>) -> R<Valid> {
    let rec = ctx.received;
    let site = row.required("site_code")?;
    let site_type: SiteType = row.code("site_type", true)?.unwrap_or(SiteType::Pharmacy);
    let area = row.area("partnership_code", ctx)?;
    let start = row
        .date("period_start", true, rec)?
        .unwrap_or(NaiveDate::MIN);
    let end = row.date("period_end", true, rec)?.unwrap_or(NaiveDate::MIN);
    let revision = row.revision()?;
    let tx = row.int("transactions", true, 0, i64::MAX)?.unwrap_or(0);
    let clients = row.int("clients", false, 0, i64::MAX)?;
    let new_clients = row.int("new_clients", false, 0, i64::MAX)?;
    let sets = row
        .int("syringe_sets_issued", true, 0, i64::MAX)?
        .unwrap_or(0);
    let mut rest = Vec::new();
    for c in NSP_OPTIONAL {
        rest.push(row.int(c, false, 0, i64::MAX)?);
    }
    if end < start {
        return Err(err(
            ReasonCode::DateOrder,
            "period_end",
            format!("period_end {end} is before period_start {start}"),
        ));
    }
    let span = (end - start).num_days();
    if span > 92 {
        return Err(err(
            ReasonCode::PeriodTooLong,
            "period_end",
            format!(
                "period_end: the period {start} to {end} is {span} days long; at most 92 are allowed"
            ),
        ));
    }
    if let Some(c) = clients
        && c > tx
    {
        return Err(err(
            ReasonCode::CountInconsistent,
            "clients",
            format!("clients {c} is more than transactions {tx}"),
        ));
    }
    if let (Some(n), Some(c)) = (new_clients, clients)
        && n > c
    {
        return Err(err(
            ReasonCode::CountInconsistent,
            "new_clients",
            format!("new_clients {n} is more than clients {c}"),
        ));
    }
    if let (Some(done), Some(offered)) = (rest[7], rest[6])
        && done > offered
    {
        return Err(err(
            ReasonCode::CountInconsistent,
            "bbv_tests_done",
            format!("bbv_tests_done {done} is more than bbv_tests_offered {offered}"),
        ));
    }
    let mut values = vec![
        V::S(site.to_string()),
        V::S(site_type.code().to_string()),
        V::S(area),
        V::D(start),
        V::D(end),
        V::I64(tx),
        opt_i64(clients),
        opt_i64(new_clients),
        V::I64(sets),
    ];
    values.extend(rest.into_iter().map(opt_i64));
    Ok(Valid {
        revision,
        extract_date: None,
        values,
        unlinkable: false,
    })
}

/// The duplicate-detection key of a row: its current-view key plus revision, normalised the
/// way validation would read it. `None` when a key field does not parse (the row will be
/// rejected for that anyway).
pub fn key_of(row: Row<'_>, source: Source) -> Option<(Vec<String>, i32)> {
    let revision = match row.get("revision") {
        "" => 1,
        v => v.parse::<i32>().ok()?,
    };
    let parts = match source {
        Source::Coroner => vec![
            row.get("coroner_area").to_string(),
            row.get("case_ref").to_string(),
        ],
        Source::Top => vec![
            row.get("provider_code").to_string(),
            row.get("client_ref").to_string(),
            parse_date(row.get("top_date")).ok()?.to_string(),
            Stage::parse(row.get("stage")).ok()?.code().to_string(),
        ],
        Source::Nsp => vec![
            row.get("site_code").to_string(),
            parse_date(row.get("period_start")).ok()?.to_string(),
        ],
    };
    if parts.iter().any(String::is_empty) {
        return None;
    }
    Some((parts, revision))
}

/// The row's values for quarantine: every known column as written, except identifiers, which
/// are pseudonymised when valid and dropped otherwise (formats.md).
pub fn quarantine_values(
    row: Row<'_>,
    ctx: &Ctx<'_>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    for c in ctx.source.columns() {
        let v = row.get(c.name);
        if v.is_empty() {
            continue;
        }
        if !c.identifier {
            m.insert(c.name.to_string(), v.into());
            continue;
        }
        match c.name {
            "nhs_number" => {
                if let Ok(n) = NhsNumber::parse(v) {
                    m.insert("person_id".into(), ctx.key.person_from_nhs(&n).into());
                }
            }
            "case_ref" => {
                m.insert("case_id".into(), ctx.key.reference(ctx.submitter, v).into());
            }
            "client_ref" => {
                m.insert(
                    "client_id".into(),
                    ctx.key.reference(ctx.submitter, v).into(),
                );
            }
            "postcode" => {
                if let Ok(d) = postcode_district(v) {
                    m.insert("postcode_district".into(), d.into());
                }
            }
            // Names and date of birth are dropped.
            _ => {}
        }
    }
    m
}
