//! Rows of KPU's published Sirekap per-TPS results (the CSV layout of `shared/data/sirekap-2024/`), read
//! into sheets for the rulebook. An empty cell is "not reported", never zero. Sirekap never published the
//! ballot section (II), section A beyond the DPT row, or the disability section, so rules on those do
//! not apply to these rows.

use std::fmt;

use crate::code::Code;
use crate::csv;
use crate::sheet::{Col, Field, Row, Sheet};

/// One Sirekap row as a sheet, or why it is not a result.
#[derive(Clone, Debug, PartialEq, Eq)]
// Rows are made and consumed one at a time, nearly all of them Reported: boxing the sheet would
// add an allocation per row to save memory nobody holds.
#[allow(clippy::large_enum_variant)]
pub enum SirekapRow {
    /// No vote figure at all: the TPS had not been reported when the data was taken.
    NotReported(Code),
    Reported(Sheet),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SirekapError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for SirekapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for SirekapError {}

/// Where each needed column sits, found from the header so column order does not matter.
pub struct SirekapColumns {
    kode_tps: usize,
    mapped: Vec<(usize, Target)>,
}

#[derive(Clone, Copy)]
enum Target {
    Field(Field),
    Votes(&'static str),
}

/// Sirekap column -> form field. `pengguna_*` are section B; `dpt_*` is row A.1.
const MAPPING: &[(&str, Target)] = &[
    ("paslon_01", Target::Votes("01")),
    ("paslon_02", Target::Votes("02")),
    ("paslon_03", Target::Votes("03")),
    ("dpt_j", Target::Field(Field::registered(Row::Dpt, Col::J))),
    ("dpt_l", Target::Field(Field::registered(Row::Dpt, Col::L))),
    ("dpt_p", Target::Field(Field::registered(Row::Dpt, Col::P))),
    (
        "pengguna_dpt_j",
        Target::Field(Field::voted(Row::Dpt, Col::J)),
    ),
    (
        "pengguna_dpt_l",
        Target::Field(Field::voted(Row::Dpt, Col::L)),
    ),
    (
        "pengguna_dpt_p",
        Target::Field(Field::voted(Row::Dpt, Col::P)),
    ),
    (
        "pengguna_dptb_j",
        Target::Field(Field::voted(Row::Dptb, Col::J)),
    ),
    (
        "pengguna_dptb_l",
        Target::Field(Field::voted(Row::Dptb, Col::L)),
    ),
    (
        "pengguna_dptb_p",
        Target::Field(Field::voted(Row::Dptb, Col::P)),
    ),
    (
        "pengguna_dpk_j",
        Target::Field(Field::voted(Row::Dpk, Col::J)),
    ),
    (
        "pengguna_dpk_l",
        Target::Field(Field::voted(Row::Dpk, Col::L)),
    ),
    (
        "pengguna_dpk_p",
        Target::Field(Field::voted(Row::Dpk, Col::P)),
    ),
    (
        "pengguna_total_j",
        Target::Field(Field::voted(Row::Total, Col::J)),
    ),
    (
        "pengguna_total_l",
        Target::Field(Field::voted(Row::Total, Col::L)),
    ),
    (
        "pengguna_total_p",
        Target::Field(Field::voted(Row::Total, Col::P)),
    ),
    ("suara_sah", Target::Field(Field::VALID)),
    ("suara_tidak_sah", Target::Field(Field::INVALID)),
    ("suara_total", Target::Field(Field::TOTAL)),
];

impl SirekapColumns {
    pub fn from_header(header: &str) -> Result<SirekapColumns, SirekapError> {
        let names = csv::split_line(header).ok_or(SirekapError {
            line: 1,
            message: "malformed header".into(),
        })?;
        let find = |name: &str| {
            names.iter().position(|n| n == name).ok_or(SirekapError {
                line: 1,
                message: format!("no column {name}"),
            })
        };
        let kode_tps = find("kode_tps")?;
        let mapped = MAPPING
            .iter()
            .map(|&(name, target)| Ok((find(name)?, target)))
            .collect::<Result<_, _>>()?;
        Ok(SirekapColumns { kode_tps, mapped })
    }

    /// Reads one data row (`line` is 1-based, for messages).
    pub fn parse(&self, text: &str, line: usize) -> Result<SirekapRow, SirekapError> {
        let bad = |message: String| SirekapError { line, message };
        let cells = csv::split_line(text).ok_or_else(|| bad("malformed CSV".into()))?;
        let cell = |i: usize| {
            cells
                .get(i)
                .map(String::as_str)
                .ok_or_else(|| bad(format!("missing column {}", i + 1)))
        };
        let tps = Code::parse(cell(self.kode_tps)?).map_err(|e| bad(format!("kode_tps: {e}")))?;
        let mut sheet = Sheet::empty(tps);
        let mut any_result = false;
        for &(column, target) in &self.mapped {
            let text = cell(column)?.trim();
            let value = if text.is_empty() {
                None
            } else {
                // A figure too large for i64 is still a figure: saturate, and COUNT_RANGE rejects it.
                let parsed: Option<i64> = if text.bytes().all(|b| b.is_ascii_digit()) {
                    Some(text.parse().unwrap_or(i64::MAX))
                } else {
                    text.strip_prefix('-')
                        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                        .map(|d| -(d.parse::<i64>().unwrap_or(i64::MAX)))
                };
                Some(parsed.ok_or_else(|| {
                    bad(format!("column {}: {text:?} is not an integer", column + 1))
                })?)
            };
            match target {
                Target::Field(field) => {
                    if value.is_some()
                        && matches!(field, Field::VALID | Field::INVALID | Field::TOTAL)
                    {
                        any_result = true;
                    }
                    sheet.set(field, value);
                }
                Target::Votes(position) => {
                    any_result |= value.is_some();
                    sheet.votes.push((position.to_string(), value));
                }
            }
        }
        Ok(if any_result {
            SirekapRow::Reported(sheet)
        } else {
            SirekapRow::NotReported(tps)
        })
    }
}

/// `administrasi` keys of Sirekap's per-TPS JSON -> form fields (`pengguna_non_dpt` is the DPK row).
const JSON_ADMINISTRASI: &[(&str, Field)] = &[
    ("pemilih_dpt_j", Field::registered(Row::Dpt, Col::J)),
    ("pemilih_dpt_l", Field::registered(Row::Dpt, Col::L)),
    ("pemilih_dpt_p", Field::registered(Row::Dpt, Col::P)),
    ("pengguna_dpt_j", Field::voted(Row::Dpt, Col::J)),
    ("pengguna_dpt_l", Field::voted(Row::Dpt, Col::L)),
    ("pengguna_dpt_p", Field::voted(Row::Dpt, Col::P)),
    ("pengguna_dptb_j", Field::voted(Row::Dptb, Col::J)),
    ("pengguna_dptb_l", Field::voted(Row::Dptb, Col::L)),
    ("pengguna_dptb_p", Field::voted(Row::Dptb, Col::P)),
    ("pengguna_non_dpt_j", Field::voted(Row::Dpk, Col::J)),
    ("pengguna_non_dpt_l", Field::voted(Row::Dpk, Col::L)),
    ("pengguna_non_dpt_p", Field::voted(Row::Dpk, Col::P)),
    ("pengguna_total_j", Field::voted(Row::Total, Col::J)),
    ("pengguna_total_l", Field::voted(Row::Total, Col::L)),
    ("pengguna_total_p", Field::voted(Row::Total, Col::P)),
    ("suara_sah", Field::VALID),
    ("suara_tidak_sah", Field::INVALID),
    ("suara_total", Field::TOTAL),
];

/// Reads Sirekap's public JSON for one TPS (`chart` keyed by Sirekap candidate id, `administrasi`).
/// `chart: null` means the TPS was not yet reported.
pub fn sheet_from_tps_json(
    tps: Code,
    json: &[u8],
    election: &crate::Election,
) -> Result<SirekapRow, SirekapError> {
    let bad = |message: String| SirekapError { line: 0, message };
    let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
    let number = |v: &serde_json::Value, what: &str| -> Result<Option<i64>, SirekapError> {
        match v {
            serde_json::Value::Null => Ok(None),
            v => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| bad(format!("{what}: {v} is not an integer"))),
        }
    };
    let Some(chart) = value.get("chart").and_then(|c| c.as_object()) else {
        return Ok(SirekapRow::NotReported(tps));
    };
    let contest = election
        .contest("ppwp")
        .ok_or_else(|| bad("the election has no ppwp contest".into()))?;
    let mut sheet = Sheet::empty(tps);
    for candidate in &contest.candidates {
        let id = candidate
            .sirekap_id
            .map(|id| id.to_string())
            .unwrap_or_default();
        let votes = match chart.get(&id) {
            Some(v) => number(v, &id)?,
            None => None,
        };
        sheet.votes.push((candidate.number.clone(), votes));
    }
    if let Some(admin) = value.get("administrasi").and_then(|a| a.as_object()) {
        for &(key, field) in JSON_ADMINISTRASI {
            if let Some(v) = admin.get(key) {
                sheet.set(field, number(v, key)?);
            }
        }
    }
    Ok(SirekapRow::Reported(sheet))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "kode_tps,kode_prov,kode_kab,kode_kec,kode_kel,no_tps,paslon_01,paslon_02,paslon_03,dpt_j,dpt_l,dpt_p,pengguna_dpt_j,pengguna_dpt_l,pengguna_dpt_p,pengguna_dptb_j,pengguna_dptb_l,pengguna_dptb_p,pengguna_dpk_j,pengguna_dpk_l,pengguna_dpk_p,pengguna_total_j,pengguna_total_l,pengguna_total_p,suara_sah,suara_tidak_sah,suara_total,ts,img1,img2,img3";

    #[test]
    fn reads_rows_and_missing_cells() {
        let columns = SirekapColumns::from_header(HEADER).unwrap();
        let row = "1101012001001,11,1101,110101,1101012001,001,144,19,2,284,139,145,236,110,126,1,0,1,2,2,0,239,112,127,165,1,166,2024-02-20 13:00:00,a,b,c";
        let SirekapRow::Reported(sheet) = columns.parse(row, 2).unwrap() else {
            panic!()
        };
        assert_eq!(sheet.get(Field::VALID), Some(165));
        assert_eq!(sheet.get(Field::BALLOTS_RECEIVED), None);
        assert_eq!(sheet.votes[1], ("02".to_string(), Some(19)));
        let empty = "1101012004002,11,1101,110101,1101012004,002,,,,,,,,,,,,,,,,,,,,,,,,,";
        assert!(matches!(
            columns.parse(empty, 3).unwrap(),
            SirekapRow::NotReported(_)
        ));
        assert!(columns.parse(&row.replace(",144,", ",1x4,"), 4).is_err());
    }
}
