//! A tally sheet as the rulebook sees it: each field of form C.Hasil either has a value or was not
//! reported. A signed form reports every field; a Sirekap row lacks the ballot section and some voter rows.
//! A rule whose fields are not all reported does not apply, so missing is never read as zero.

use crate::code::Code;
use crate::form::{CHasil, Lpj, VoterRows};

/// Number of fixed fields (the votes per ballot position come on top).
pub const FIELD_COUNT: usize = 37;

/// A fixed field of the form, by index into [`FIELDS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Field(pub u8);

pub struct FieldInfo {
    /// The JSON path in a signed form, e.g. `voted.total.j`.
    pub path: &'static str,
    /// The row and column as printed on the paper form, e.g. `B.4 J`.
    pub label: &'static str,
}

macro_rules! rows {
    ($prefix:literal, $label:literal) => {
        [
            FieldInfo {
                path: concat!($prefix, ".dpt.l"),
                label: concat!($label, ".1 L"),
            },
            FieldInfo {
                path: concat!($prefix, ".dpt.p"),
                label: concat!($label, ".1 P"),
            },
            FieldInfo {
                path: concat!($prefix, ".dpt.j"),
                label: concat!($label, ".1 J"),
            },
            FieldInfo {
                path: concat!($prefix, ".dptb.l"),
                label: concat!($label, ".2 L"),
            },
            FieldInfo {
                path: concat!($prefix, ".dptb.p"),
                label: concat!($label, ".2 P"),
            },
            FieldInfo {
                path: concat!($prefix, ".dptb.j"),
                label: concat!($label, ".2 J"),
            },
            FieldInfo {
                path: concat!($prefix, ".dpk.l"),
                label: concat!($label, ".3 L"),
            },
            FieldInfo {
                path: concat!($prefix, ".dpk.p"),
                label: concat!($label, ".3 P"),
            },
            FieldInfo {
                path: concat!($prefix, ".dpk.j"),
                label: concat!($label, ".3 J"),
            },
            FieldInfo {
                path: concat!($prefix, ".total.l"),
                label: concat!($label, ".4 L"),
            },
            FieldInfo {
                path: concat!($prefix, ".total.p"),
                label: concat!($label, ".4 P"),
            },
            FieldInfo {
                path: concat!($prefix, ".total.j"),
                label: concat!($label, ".4 J"),
            },
        ]
    };
}

const REGISTERED_ROWS: [FieldInfo; 12] = rows!("registered", "A");
const VOTED_ROWS: [FieldInfo; 12] = rows!("voted", "B");
const OTHER: [FieldInfo; 13] = [
    FieldInfo {
        path: "disability.registered.l",
        label: "III.1 L",
    },
    FieldInfo {
        path: "disability.registered.p",
        label: "III.1 P",
    },
    FieldInfo {
        path: "disability.registered.j",
        label: "III.1 J",
    },
    FieldInfo {
        path: "disability.voted.l",
        label: "III.2 L",
    },
    FieldInfo {
        path: "disability.voted.p",
        label: "III.2 P",
    },
    FieldInfo {
        path: "disability.voted.j",
        label: "III.2 J",
    },
    FieldInfo {
        path: "ballots.received",
        label: "II.1",
    },
    FieldInfo {
        path: "ballots.used",
        label: "II.2",
    },
    FieldInfo {
        path: "ballots.damaged",
        label: "II.3",
    },
    FieldInfo {
        path: "ballots.unused",
        label: "II.4",
    },
    FieldInfo {
        path: "valid",
        label: "Suara sah",
    },
    FieldInfo {
        path: "invalid",
        label: "Suara tidak sah",
    },
    FieldInfo {
        path: "total",
        label: "Jumlah suara",
    },
];

pub fn field_info(field: Field) -> &'static FieldInfo {
    let i = field.0 as usize;
    match i {
        0..=11 => &REGISTERED_ROWS[i],
        12..=23 => &VOTED_ROWS[i - 12],
        _ => &OTHER[i - 24],
    }
}

/// Voter rows in form order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Row {
    Dpt = 0,
    Dptb = 1,
    Dpk = 2,
    Total = 3,
}

/// Columns of an L/P/J row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Col {
    L = 0,
    P = 1,
    J = 2,
}

pub const COLS: [Col; 3] = [Col::L, Col::P, Col::J];
pub const ROWS: [Row; 4] = [Row::Dpt, Row::Dptb, Row::Dpk, Row::Total];

impl Field {
    pub const fn registered(row: Row, col: Col) -> Field {
        Field((row as u8) * 3 + col as u8)
    }
    pub const fn voted(row: Row, col: Col) -> Field {
        Field(12 + (row as u8) * 3 + col as u8)
    }
    pub const fn disability_registered(col: Col) -> Field {
        Field(24 + col as u8)
    }
    pub const fn disability_voted(col: Col) -> Field {
        Field(27 + col as u8)
    }
    pub const BALLOTS_RECEIVED: Field = Field(30);
    pub const BALLOTS_USED: Field = Field(31);
    pub const BALLOTS_DAMAGED: Field = Field(32);
    pub const BALLOTS_UNUSED: Field = Field(33);
    pub const VALID: Field = Field(34);
    pub const INVALID: Field = Field(35);
    pub const TOTAL: Field = Field(36);

    pub fn all() -> impl Iterator<Item = Field> {
        (0..FIELD_COUNT as u8).map(Field)
    }

    pub fn path(self) -> &'static str {
        field_info(self).path
    }

    pub fn label(self) -> &'static str {
        field_info(self).label
    }
}

/// A tally sheet for the rulebook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sheet {
    pub tps: Code,
    /// `None` where the source did not say (Sirekap rows); a signed form states the contest.
    pub election: Option<String>,
    pub contest: Option<String>,
    pub values: [Option<i64>; FIELD_COUNT],
    /// Votes per ballot position, in the source's order.
    pub votes: Vec<(String, Option<i64>)>,
}

impl Sheet {
    pub fn get(&self, field: Field) -> Option<i64> {
        self.values[field.0 as usize]
    }

    pub fn set(&mut self, field: Field, value: Option<i64>) {
        self.values[field.0 as usize] = value;
    }

    pub fn empty(tps: Code) -> Sheet {
        Sheet {
            tps,
            election: None,
            contest: None,
            values: [None; FIELD_COUNT],
            votes: Vec::new(),
        }
    }

    pub fn from_form(form: &CHasil) -> Sheet {
        let mut sheet = Sheet::empty(form.tps);
        sheet.election = Some(form.election.clone());
        sheet.contest = Some(form.contest.clone());
        let put_rows = |sheet: &mut Sheet, rows: &VoterRows, field: fn(Row, Col) -> Field| {
            for (row, lpj) in [
                (Row::Dpt, rows.dpt),
                (Row::Dptb, rows.dptb),
                (Row::Dpk, rows.dpk),
                (Row::Total, rows.total),
            ] {
                put_lpj(sheet, lpj, |col| field(row, col));
            }
        };
        put_rows(&mut sheet, &form.registered, Field::registered);
        put_rows(&mut sheet, &form.voted, Field::voted);
        put_lpj(
            &mut sheet,
            form.disability.registered,
            Field::disability_registered,
        );
        put_lpj(&mut sheet, form.disability.voted, Field::disability_voted);
        sheet.set(Field::BALLOTS_RECEIVED, Some(form.ballots.received));
        sheet.set(Field::BALLOTS_USED, Some(form.ballots.used));
        sheet.set(Field::BALLOTS_DAMAGED, Some(form.ballots.damaged));
        sheet.set(Field::BALLOTS_UNUSED, Some(form.ballots.unused));
        sheet.set(Field::VALID, Some(form.valid));
        sheet.set(Field::INVALID, Some(form.invalid));
        sheet.set(Field::TOTAL, Some(form.total));
        sheet.votes = form
            .votes
            .iter()
            .map(|(p, v)| (p.clone(), Some(*v)))
            .collect();
        sheet
    }
}

fn put_lpj(sheet: &mut Sheet, lpj: Lpj, field: impl Fn(Col) -> Field) {
    sheet.set(field(Col::L), Some(lpj.l));
    sheet.set(field(Col::P), Some(lpj.p));
    sheet.set(field(Col::J), Some(lpj.j));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_table_is_consistent() {
        assert_eq!(Field::voted(Row::Total, Col::J).path(), "voted.total.j");
        assert_eq!(Field::voted(Row::Total, Col::J).label(), "B.4 J");
        assert_eq!(Field::registered(Row::Dptb, Col::P).label(), "A.2 P");
        assert_eq!(Field::disability_voted(Col::J).path(), "disability.voted.j");
        assert_eq!(Field::TOTAL.path(), "total");
        let mut paths: Vec<_> = Field::all().map(Field::path).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), FIELD_COUNT);
    }
}
