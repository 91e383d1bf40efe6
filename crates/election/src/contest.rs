//! Elections and contests. A contest lists the ballot positions a form reports votes for. For Pilpres
//! a position is a candidate pair ("01"); a DPR/DPRD contest will list parties and their candidates
//! ("p05" and "p05.c03"), and a DPD contest individual candidates, all in the same shape, so the form and
//! the rulebook need no change to carry them (only the "sum of positions = valid" rule must learn which
//! positions add up, which is why `ContestKind` exists).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContestKind {
    /// Presidential and vice-presidential pairs (PPWP).
    Presidential,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The ballot number as printed on the form: "01".
    pub number: String,
    pub name: String,
    /// Sirekap's identifier for this candidate (its JSON `chart` key), where there is one.
    pub sirekap_id: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contest {
    /// "ppwp": KPU's code for the presidential election.
    pub id: String,
    pub kind: ContestKind,
    pub name: String,
    /// In ballot order.
    pub candidates: Vec<Candidate>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Election {
    pub id: String,
    pub name: String,
    pub contests: Vec<Contest>,
}

impl Election {
    pub fn contest(&self, id: &str) -> Option<&Contest> {
        self.contests.iter().find(|contest| contest.id == id)
    }

    /// Pemilu 2024's presidential contest, the one saksi knows first.
    pub fn pemilu_2024() -> Election {
        let pair = |number: &str, name: &str, sirekap_id| Candidate {
            number: number.into(),
            name: name.into(),
            sirekap_id: Some(sirekap_id),
        };
        Election {
            id: "pemilu-2024".into(),
            name: "Pemilihan Umum 2024".into(),
            contests: vec![Contest {
                id: "ppwp".into(),
                kind: ContestKind::Presidential,
                name: "Pemilihan Presiden dan Wakil Presiden".into(),
                candidates: vec![
                    pair("01", "Anies Rasyid Baswedan - Muhaimin Iskandar", 100025),
                    pair("02", "Prabowo Subianto - Gibran Rakabuming Raka", 100026),
                    pair("03", "Ganjar Pranowo - Mahfud MD", 100027),
                ],
            }],
        }
    }
}
