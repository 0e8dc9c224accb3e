//! Row validation, exactly as formats.md states each rule, and pseudonymisation.
//!
//! A row is parsed into typed values for the stored schema (`drd_model::schema`) or rejected
//! with one [`RowError`]: a reason code from the closed list, the column, and a message. For
//! identifier columns the message names the column and the rule, never the value.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use chrono::NaiveDate;
use drd_model::columns::{
    CORONER_COLUMNS as CO, ColumnSpec, NSP_COLUMNS as NS, TOP_COLUMNS as TP, normalise_header,
};
use drd_model::date::{age_on, parse_date};
use drd_model::reference::Partnerships;
use drd_model::substance::split_substance_list;
use drd_model::*;

use crate::batch::BatchBuilder;
use crate::chunk::Chunk;
use crate::key::Pseudonymiser;

/// A typed value for one stored column.
#[derive(Debug, Clone, PartialEq)]
pub enum V<'a> {
    /// Null.
    Null,
    /// Text.
    S(String),
    /// Text borrowed from the row being validated.
    T(&'a str),
    /// Shared text (values repeated on every row of a file, cloned without copying).
    R(Arc<str>),
    /// Fixed text (codes and labels).
    St(&'static str),
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

/// Everything the validator needs besides the row; cheap to clone into each lane.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Source.
    pub source: Source,
    /// Submitter id.
    pub submitter: Arc<str>,
    /// Keyed pseudonyms.
    pub pseudo: Pseudonymiser,
    /// Geography vintage.
    pub partnerships: Arc<Partnerships>,
    /// Areas this submitter may send.
    pub authorised: Arc<HashSet<String>>,
    /// When the extract was received: later dates are `future_date`.
    pub received: NaiveDate,
}

/// A column of a source's contract, resolved when the program is compiled (a look-up is an
/// array index, not a name search).
#[derive(Debug, Clone, Copy)]
pub struct Col {
    /// Position in the source's column list.
    pub i: usize,
    /// Normalised name.
    pub name: &'static str,
    /// Whether it is a direct identifier.
    pub identifier: bool,
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The column `name` of a column list; a compile error when it has none.
pub const fn col_of(cols: &'static [ColumnSpec], name: &str) -> Col {
    let mut i = 0;
    while i < cols.len() {
        if same(cols[i].name, name) {
            return Col {
                i,
                name: cols[i].name,
                identifier: cols[i].identifier,
            };
        }
        i += 1;
    }
    panic!("no such column in the contract")
}

const fn cols_of<const N: usize>(cols: &'static [ColumnSpec], names: [&str; N]) -> [Col; N] {
    let mut out = [Col {
        i: 0,
        name: "",
        identifier: false,
    }; N];
    let mut k = 0;
    while k < N {
        out[k] = col_of(cols, names[k]);
        k += 1;
    }
    out
}

macro_rules! c {
    ($cols:ident, $name:literal) => {
        const { col_of($cols, $name) }
    };
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
        HeaderMap {
            index,
            unknown,
            missing,
        }
    }
}

/// `str::trim`, without its character decoding when both ends are visible ASCII (nearly
/// every value).
#[inline]
fn trim(v: &str) -> &str {
    match (v.as_bytes().first(), v.as_bytes().last()) {
        (Some(&a), Some(&b)) if (0x21..0x7f).contains(&a) && (0x21..0x7f).contains(&b) => v,
        (None, _) => v,
        _ => v.trim(),
    }
}

/// One row of a chunk, looked up by column.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    chunk: &'a Chunk,
    r: usize,
    index: &'a [Option<usize>],
}

impl<'a> Row<'a> {
    /// Row `r` of a chunk whose header `map` describes.
    pub fn new(chunk: &'a Chunk, r: usize, map: &'a HeaderMap) -> Row<'a> {
        Row {
            chunk,
            r,
            index: &map.index,
        }
    }

    /// The trimmed value ("" when blank or absent).
    #[inline]
    pub fn get(&self, col: Col) -> &'a str {
        self.at(col.i)
    }

    /// The trimmed value of the source column at position `i`.
    #[inline]
    fn at(&self, i: usize) -> &'a str {
        match self.index.get(i) {
            Some(Some(j)) => trim(self.chunk.field(self.r, *j)),
            _ => "",
        }
    }

    fn required(&self, col: Col) -> R<&'a str> {
        let v = self.get(col);
        if v.is_empty() {
            Err(err(
                ReasonCode::MissingRequiredValue,
                col.name,
                format!("{} is required but blank", col.name),
            ))
        } else {
            Ok(v)
        }
    }

    fn date(&self, c: Col, required: bool, received: NaiveDate) -> R<Option<NaiveDate>> {
        let col = c.name;
        let v = if required {
            self.required(c)?
        } else {
            self.get(c)
        };
        if v.is_empty() {
            return Ok(None);
        }
        let d = parse_date(v).map_err(|e| {
            if c.identifier {
                err(ReasonCode::InvalidDate, col, format!("{col} is not a valid date (expected YYYY-MM-DD or DD/MM/YYYY, on or after 1900-01-01)"))
            } else {
                err(ReasonCode::InvalidDate, col, format!("{col}: {e}"))
            }
        })?;
        if d > received {
            let shown = if c.identifier {
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

    #[inline]
    fn int(&self, c: Col, required: bool, lo: i64, hi: i64) -> R<Option<i64>> {
        let v = if required {
            self.required(c)?
        } else {
            self.get(c)
        };
        // Short unsigned numbers in range (nearly all): no parser needed.
        let n = match *v.as_bytes() {
            [] => return Ok(None),
            [a] if a.is_ascii_digit() => i64::from(a - b'0'),
            [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
                i64::from(a - b'0') * 10 + i64::from(b - b'0')
            }
            _ if v.len() <= 9 && v.bytes().all(|b| b.is_ascii_digit()) => {
                v.bytes().fold(0i64, |n, b| n * 10 + i64::from(b - b'0'))
            }
            _ => return Row::int_slow(c, v, lo, hi),
        };
        if n >= lo && n <= hi {
            Ok(Some(n))
        } else {
            Row::int_slow(c, v, lo, hi)
        }
    }

    /// [`Row::int`] for signed, long or out-of-range text: the exact reason.
    #[cold]
    fn int_slow(c: Col, v: &str, lo: i64, hi: i64) -> R<Option<i64>> {
        let col = c.name;
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

    fn number(&self, c: Col, lo: f64) -> R<Option<f64>> {
        let col = c.name;
        let v = self.get(c);
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

    fn code<T: Coded>(&self, c: Col, required: bool) -> R<Option<T>> {
        let col = c.name;
        let v = if required {
            self.required(c)?
        } else {
            self.get(c)
        };
        if v.is_empty() {
            return Ok(None);
        }
        T::parse(v)
            .map(Some)
            .map_err(|e| err(ReasonCode::InvalidCode, col, format!("{col}: {e}")))
    }

    fn ynu(&self, c: Col) -> R<V<'a>> {
        let col = c.name;
        let v = self.get(c);
        let y = YesNoUnknown::parse_or_unknown(v)
            .map_err(|e| err(ReasonCode::InvalidCode, col, format!("{col}: {e}")))?;
        Ok(y.as_bool().map_or(V::Null, V::B))
    }

    /// The area code, borrowed from the row when it is already written normally.
    fn area(&self, c: Col, ctx: &Ctx) -> R<V<'a>> {
        let col = c.name;
        let v = self.required(c)?;
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
        Ok(if code.as_str() == v {
            V::T(v)
        } else {
            V::S(code.to_string())
        })
    }

    fn nhs(&self, c: Col) -> R<Option<NhsNumber>> {
        let v = self.get(c);
        if v.is_empty() {
            return Ok(None);
        }
        NhsNumber::parse(v)
            .map(Some)
            .map_err(|e| err(ReasonCode::InvalidNhsNumber, c.name, e.to_string()))
    }

    fn revision(&self, c: Col) -> R<i32> {
        Ok(self.int(c, false, 1, i64::from(i32::MAX))?.unwrap_or(1) as i32)
    }
}

fn opt_i32<'a>(x: Option<i64>) -> V<'a> {
    x.map_or(V::Null, |v| V::I32(v as i32))
}

fn opt_i64<'a>(x: Option<i64>) -> V<'a> {
    x.map_or(V::Null, V::I64)
}

fn opt_date<'a>(x: Option<NaiveDate>) -> V<'a> {
    x.map_or(V::Null, V::D)
}

fn list<'a>(l: Vec<String>) -> V<'a> {
    if l.is_empty() { V::Null } else { V::L(l) }
}

/// The last reference and NHS number pseudonymised by one lane, with their pseudonyms:
/// extracts list a person's records together, so most rows repeat the previous row's
/// identifiers and need no new HMAC. Held in memory only; never printed.
#[derive(Default)]
pub struct Memo {
    reference: Option<(String, String)>,
    nhs: Option<(String, String)>,
    /// The last area accepted as written, with its normal form when that differs.
    area: Option<(String, Option<String>)>,
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo(<redacted>)")
    }
}

impl Memo {
    /// [`Row::area`], remembering the last accepted value (rows of one area come together).
    fn area<'a>(&mut self, row: &Row<'a>, c: Col, ctx: &Ctx) -> R<V<'a>> {
        let v = row.get(c);
        if let Some((raw, norm)) = &self.area
            && raw == v
        {
            return Ok(norm.as_ref().map_or(V::T(v), |n| V::S(n.clone())));
        }
        let out = row.area(c, ctx)?;
        let norm = match &out {
            V::S(n) => Some(n.clone()),
            _ => None,
        };
        self.area = Some((v.to_string(), norm));
        Ok(out)
    }

    fn reference(&mut self, ctx: &Ctx, value: &str) -> &str {
        let hit = matches!(&self.reference, Some((k, _)) if k == value);
        if !hit {
            self.reference = Some((
                value.to_string(),
                ctx.pseudo.reference(&ctx.submitter, value),
            ));
        }
        self.reference.as_ref().map_or("", |(_, v)| v.as_str())
    }

    fn nhs(&mut self, ctx: &Ctx, n: &NhsNumber) -> &str {
        let hit = matches!(&self.nhs, Some((k, _)) if k == n.digits());
        if !hit {
            self.nhs = Some((n.digits().to_string(), ctx.pseudo.person_from_nhs(n)));
        }
        self.nhs.as_ref().map_or("", |(_, v)| v.as_str())
    }
}

/// What validation tells the caller besides the stored values.
#[derive(Debug, Clone)]
pub struct Valid {
    /// `revision`.
    pub revision: i32,
    /// `extract_date`.
    pub extract_date: Option<NaiveDate>,
    /// Whether `person_id` is null.
    pub unlinkable: bool,
    /// Coroner rows: the substance names listed, and the date of death.
    pub substances: Option<(Vec<String>, NaiveDate)>,
}

/// Validates one row of any source, writing the values of the source-specific stored
/// columns to `out`, starting at its cursor. On `Err`, `out` may hold some of them: the
/// caller rolls the row back.
pub fn validate<'a>(row: Row<'a>, ctx: &Ctx, memo: &mut Memo, out: &mut BatchBuilder) -> R<Valid> {
    match ctx.source {
        Source::Coroner => coroner(row, ctx, memo, out),
        Source::Top => top(row, ctx, memo, out),
        Source::Nsp => nsp(row, ctx, memo, out),
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

fn band<'a>(age: Option<u32>) -> V<'a> {
    age.and_then(|a| EspBand::from_age(a).ok())
        .map_or(V::Null, |b| V::St(b.as_str()))
}

const CO_YNU: [Col; 3] = cols_of(CO, ["known_drug_user", "injecting_history", "in_treatment"]);
const CO_YNU2: [Col; 2] = cols_of(CO, ["naloxone_administered", "alone_at_time"]);

fn coroner<'a>(row: Row<'a>, ctx: &Ctx, memo: &mut Memo, out: &mut BatchBuilder) -> R<Valid> {
    let rec = ctx.received;
    let case_ref = row.required(c!(CO, "case_ref"))?;
    let coroner_area = row.required(c!(CO, "coroner_area"))?;
    let revision = row.revision(c!(CO, "revision"))?;
    let extract_date = row.date(c!(CO, "extract_date"), false, rec)?;
    let nhs = row.nhs(c!(CO, "nhs_number"))?;
    let dob = row.date(c!(CO, "date_of_birth"), false, rec)?;
    let age_col = row.int(c!(CO, "age"), false, 0, 120)?;
    let sex: Sex = row.code(c!(CO, "sex"), true)?.unwrap_or(Sex::Unknown);
    let area = memo.area(&row, c!(CO, "residence_area"), ctx)?;
    let postcode = row.get(c!(CO, "postcode"));
    let district = if postcode.is_empty() {
        None
    } else {
        Some(
            postcode_district(postcode)
                .map_err(|e| err(ReasonCode::InvalidPostcode, "postcode", e.to_string()))?,
        )
    };
    let dod = row
        .date(c!(CO, "date_of_death"), true, rec)?
        .unwrap_or(NaiveDate::MIN);
    let inquest = row.date(c!(CO, "date_of_inquest"), false, rec)?;
    let place: Option<PlaceOfDeath> = row.code(c!(CO, "place_of_death"), false)?;
    let cause = match row.get(c!(CO, "underlying_cause_icd10")) {
        "" => None,
        v => Some(Icd10::parse(v).map_err(|e| {
            err(
                ReasonCode::InvalidCode,
                "underlying_cause_icd10",
                format!("underlying_cause_icd10: {e}"),
            )
        })?),
    };
    let conclusion: Option<Conclusion> = row.code(c!(CO, "conclusion"), false)?;
    let mut ynu = [V::Null, V::Null, V::Null];
    for (v, c) in ynu.iter_mut().zip(CO_YNU) {
        *v = row.ynu(c)?;
    }
    let prison = row.int(c!(CO, "released_from_prison_days"), false, 0, 365)?;
    let mut ynu2 = [V::Null, V::Null];
    for (v, c) in ynu2.iter_mut().zip(CO_YNU2) {
        *v = row.ynu(c)?;
    }
    let withdrawn = YesNo::parse_or_no(row.get(c!(CO, "withdrawn"))).map_err(|e| {
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
    let surname = row.get(c!(CO, "surname"));
    let forenames = row.get(c!(CO, "forenames"));
    let person_id = match (&nhs, dob) {
        (Some(n), _) => Some(V::S(memo.nhs(ctx, n).to_string())),
        (None, Some(b)) if !surname.is_empty() && !forenames.is_empty() => Some(V::S(
            ctx.pseudo.person_from_names(surname, forenames, b, sex),
        )),
        _ => None,
    };
    let unlinkable = person_id.is_none();
    let implicated = split_substance_list(row.get(c!(CO, "substances_implicated")));
    let present = split_substance_list(row.get(c!(CO, "substances_present")));
    let names = implicated.iter().chain(&present).cloned().collect();
    out.push(V::S(memo.reference(ctx, case_ref).to_string()));
    out.extend([
        V::T(coroner_area),
        person_id.unwrap_or(V::Null),
        opt_i32(age.map(i64::from)),
        band(age),
        V::St(sex.code()),
        area,
        district.map_or(V::Null, V::S),
        V::D(dod),
        opt_date(inquest),
        opt_i32(inquest.map(|i| (i - dod).num_days())),
        place.map_or(V::Null, |p| V::St(p.code())),
        cause.map_or(V::Null, |c| V::S(c.to_string())),
        conclusion.map_or(V::Null, |c| V::St(c.code())),
        list(implicated),
        list(present),
    ]);
    out.extend(ynu);
    out.push(opt_i32(prison));
    out.extend(ynu2);
    out.push(V::B(withdrawn == YesNo::Yes));
    Ok(Valid {
        revision,
        extract_date,
        unlinkable,
        substances: Some((names, dod)),
    })
}

use drd_model::schema::{NSP_OPTIONAL_COUNTS, TOP_SUBSTANCE_DAYS};

const TOP_DAYS: [Col; TOP_SUBSTANCE_DAYS.len()] = cols_of(TP, TOP_SUBSTANCE_DAYS);
const TOP_CRIME: [Col; 3] = cols_of(TP, ["shoplifting_days", "selling_drugs_days", "theft_days"]);
const TOP_SCORES: [Col; 3] = cols_of(TP, ["psych_health", "phys_health", "quality_of_life"]);
const TOP_WORK: [Col; 2] = cols_of(TP, ["paid_work_days", "education_days"]);
const NSP_OPTIONAL: [Col; NSP_OPTIONAL_COUNTS.len()] = cols_of(NS, NSP_OPTIONAL_COUNTS);

fn top<'a>(row: Row<'a>, ctx: &Ctx, memo: &mut Memo, out: &mut BatchBuilder) -> R<Valid> {
    let rec = ctx.received;
    let provider = row.required(c!(TP, "provider_code"))?;
    let area = memo.area(&row, c!(TP, "partnership_code"), ctx)?;
    let client_ref = row.required(c!(TP, "client_ref"))?;
    let nhs = row.nhs(c!(TP, "nhs_number"))?;
    let dob = row.date(c!(TP, "date_of_birth"), true, rec)?;
    let sex: Sex = row.code(c!(TP, "sex"), true)?.unwrap_or(Sex::Unknown);
    let start = row
        .date(c!(TP, "episode_start"), true, rec)?
        .unwrap_or(NaiveDate::MIN);
    let top_date = row
        .date(c!(TP, "top_date"), true, rec)?
        .unwrap_or(NaiveDate::MIN);
    let stage: Stage = row.code(c!(TP, "stage"), true)?.unwrap_or(Stage::Start);
    let revision = row.revision(c!(TP, "revision"))?;
    // The values are written in schema order as they are checked; the first ten columns
    // come before the day counts but need the checks below, so make room for them.
    let head = out.cursor();
    out.skip(10);
    for c in TOP_DAYS {
        out.push(opt_i32(row.int(c, false, 0, 28)?));
    }
    out.push(
        row.number(c!(TP, "alcohol_units_per_day"), 0.0)?
            .map_or(V::Null, V::F),
    );
    out.push(opt_i32(row.int(c!(TP, "injected_days"), false, 0, 28)?));
    out.push(row.ynu(c!(TP, "shared_equipment"))?);
    for c in TOP_CRIME {
        out.push(opt_i32(row.int(c, false, 0, 28)?));
    }
    out.push(row.ynu(c!(TP, "assault"))?);
    for c in TOP_SCORES {
        out.push(opt_i32(row.int(c, false, 0, 20)?));
    }
    for c in TOP_WORK {
        out.push(opt_i32(row.int(c, false, 0, 28)?));
    }
    out.push(row.ynu(c!(TP, "acute_housing_problem"))?);
    out.push(row.ynu(c!(TP, "risk_of_eviction"))?);
    let exit: Option<ExitReason> = row.code(c!(TP, "exit_reason"), false)?;
    if exit.is_some() && stage != Stage::Exit {
        return Err(err(
            ReasonCode::InvalidCode,
            "exit_reason",
            format!(
                "exit_reason '{}' is only allowed on exit TOPs, but stage is {}",
                row.get(c!(TP, "exit_reason")),
                stage.code()
            ),
        ));
    }
    out.push(exit.map_or(V::Null, |e| V::St(e.code())));
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
    let unlinkable = nhs.is_none();
    out.set(head, V::T(provider));
    out.set(head + 1, area);
    out.set(head + 2, V::T(memo.reference(ctx, client_ref)));
    let person_id = match &nhs {
        Some(n) => V::T(memo.nhs(ctx, n)),
        None => V::Null,
    };
    out.set(head + 3, person_id);
    out.set(head + 4, opt_i32(age.map(i64::from)));
    out.set(head + 5, band(age));
    out.set(head + 6, V::St(sex.code()));
    out.set(head + 7, V::D(start));
    out.set(head + 8, V::D(top_date));
    out.set(head + 9, V::St(stage.code()));
    Ok(Valid {
        revision,
        extract_date: None,
        unlinkable,
        substances: None,
    })
}

fn nsp<'a>(row: Row<'a>, ctx: &Ctx, memo: &mut Memo, out: &mut BatchBuilder) -> R<Valid> {
    let rec = ctx.received;
    let site = row.required(c!(NS, "site_code"))?;
    let site_type: SiteType = row
        .code(c!(NS, "site_type"), true)?
        .unwrap_or(SiteType::Pharmacy);
    let area = memo.area(&row, c!(NS, "partnership_code"), ctx)?;
    let start = row
        .date(c!(NS, "period_start"), true, rec)?
        .unwrap_or(NaiveDate::MIN);
    let end = row
        .date(c!(NS, "period_end"), true, rec)?
        .unwrap_or(NaiveDate::MIN);
    let revision = row.revision(c!(NS, "revision"))?;
    let tx = row
        .int(c!(NS, "transactions"), true, 0, i64::MAX)?
        .unwrap_or(0);
    let clients = row.int(c!(NS, "clients"), false, 0, i64::MAX)?;
    let new_clients = row.int(c!(NS, "new_clients"), false, 0, i64::MAX)?;
    let sets = row
        .int(c!(NS, "syringe_sets_issued"), true, 0, i64::MAX)?
        .unwrap_or(0);
    let mut rest = [None; NSP_OPTIONAL_COUNTS.len()];
    for (v, c) in rest.iter_mut().zip(NSP_OPTIONAL) {
        *v = row.int(c, false, 0, i64::MAX)?;
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
    out.extend([
        V::T(site),
        V::St(site_type.code()),
        area,
        V::D(start),
        V::D(end),
        V::I64(tx),
        opt_i64(clients),
        opt_i64(new_clients),
        V::I64(sets),
    ]);
    out.extend(rest.into_iter().map(opt_i64));
    Ok(Valid {
        revision,
        extract_date: None,
        unlinkable: false,
        substances: None,
    })
}

static KEY_SEEDS: std::sync::LazyLock<(ahash::RandomState, ahash::RandomState)> =
    std::sync::LazyLock::new(|| {
        (
            ahash::RandomState::with_seeds(1, 2, 3, 4),
            ahash::RandomState::with_seeds(0x9e37_79b9, 0x7f4a_7c15, 0x85eb_ca6b, 0xc2b2_ae35),
        )
    });

/// A 128-bit hash of the row's duplicate-detection key: its current-view key plus revision,
/// normalised the way validation reads them. `None` when a key field is blank or does not
/// parse (the row is rejected for that anyway).
pub fn key_hash(row: Row<'_>, source: Source) -> Option<u128> {
    let (rev_col, texts, date, stage): (Col, &[Col], Option<Col>, Option<Col>) = match source {
        Source::Coroner => (
            c!(CO, "revision"),
            &const { [col_of(CO, "coroner_area"), col_of(CO, "case_ref")] },
            None,
            None,
        ),
        Source::Top => (
            c!(TP, "revision"),
            &const { [col_of(TP, "provider_code"), col_of(TP, "client_ref")] },
            Some(c!(TP, "top_date")),
            Some(c!(TP, "stage")),
        ),
        Source::Nsp => (
            c!(NS, "revision"),
            &const { [col_of(NS, "site_code")] },
            Some(c!(NS, "period_start")),
            None,
        ),
    };
    let revision = match row.get(rev_col) {
        "" => 1,
        v => v.parse::<i32>().ok()?,
    };
    // Two independently seeded 64-bit hashes: a false "duplicate" needs both to collide.
    let mut a = KEY_SEEDS.0.build_hasher();
    let mut b = KEY_SEEDS.1.build_hasher();
    let mut feed = |bytes: &[u8]| {
        a.write(bytes);
        a.write_u8(0x1f);
        b.write(bytes);
        b.write_u8(0x1f);
    };
    for &c in texts {
        let v = row.get(c);
        if v.is_empty() {
            return None;
        }
        feed(v.as_bytes());
    }
    if let Some(c) = date {
        let d = parse_date(row.get(c)).ok()?;
        feed(&chrono::Datelike::num_days_from_ce(&d).to_le_bytes());
    }
    if let Some(c) = stage {
        feed(Stage::parse(row.get(c)).ok()?.code().as_bytes());
    }
    feed(&revision.to_le_bytes());
    Some(u128::from(a.finish()) << 64 | u128::from(b.finish()))
}

/// The row's values for quarantine: every known column as written, except identifiers, which
/// are pseudonymised when valid and dropped otherwise (formats.md).
pub fn quarantine_values(row: Row<'_>, ctx: &Ctx) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    for (i, c) in ctx.source.columns().iter().enumerate() {
        let v = row.at(i);
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
                    m.insert("person_id".into(), ctx.pseudo.person_from_nhs(&n).into());
                }
            }
            "case_ref" => {
                m.insert(
                    "case_id".into(),
                    ctx.pseudo.reference(&ctx.submitter, v).into(),
                );
            }
            "client_ref" => {
                m.insert(
                    "client_id".into(),
                    ctx.pseudo.reference(&ctx.submitter, v).into(),
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
