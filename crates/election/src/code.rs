//! Region codes as KPU writes them: Kemendagri codes without dots.
//!
//! ```text
//! provinsi        11                2 digits
//! kabupaten/kota  1101              4
//! kecamatan       110101            6
//! kelurahan/desa  1101012001       10
//! TPS             1101012001001    13 = desa code + 3-digit TPS number
//! ```
//!
//! Province codes run 11..=99, so a code never starts with 0 and its digit count names its level. That is
//! why a code is stored as a plain `u64`: cheap to hash, compare and sort, and sorting by code keeps every
//! region's descendants contiguous only within a level, which the registry relies on nowhere.

use std::fmt;

/// One step of the hierarchy. Overseas units (province code 99) use the same five levels: 99 is "Luar
/// Negeri", 99NN a city with a mission, and the two middle levels repeat the city.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Provinsi,
    KabKota,
    Kecamatan,
    Desa,
    Tps,
}

impl Level {
    pub const ALL: [Level; 5] = [Level::Provinsi, Level::KabKota, Level::Kecamatan, Level::Desa, Level::Tps];

    pub const fn digits(self) -> usize {
        match self {
            Level::Provinsi => 2,
            Level::KabKota => 4,
            Level::Kecamatan => 6,
            Level::Desa => 10,
            Level::Tps => 13,
        }
    }

    pub fn from_digits(digits: usize) -> Option<Level> {
        Level::ALL.into_iter().find(|level| level.digits() == digits)
    }

    /// The name used in file formats and URLs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Provinsi => "provinsi",
            Level::KabKota => "kabkota",
            Level::Kecamatan => "kecamatan",
            Level::Desa => "desa",
            Level::Tps => "tps",
        }
    }

    pub fn parent(self) -> Option<Level> {
        match self {
            Level::Provinsi => None,
            Level::KabKota => Some(Level::Provinsi),
            Level::Kecamatan => Some(Level::KabKota),
            Level::Desa => Some(Level::Kecamatan),
            Level::Tps => Some(Level::Desa),
        }
    }
}

/// A region or TPS code. Invariant: the number has exactly `level.digits()` decimal digits and its
/// province part is 11..=99.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Code(u64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeError {
    NotDigits,
    BadLength(usize),
    BadProvince,
}

impl fmt::Display for CodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeError::NotDigits => write!(f, "a region code has only the digits 0-9 (no dots)"),
            CodeError::BadLength(n) => {
                write!(f, "a region code has 2, 4, 6, 10 or 13 digits, this one has {n}")
            }
            CodeError::BadProvince => write!(f, "province codes run from 11 to 99"),
        }
    }
}

impl std::error::Error for CodeError {}

impl Code {
    pub fn parse(text: &str) -> Result<Code, CodeError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodeError::NotDigits);
        }
        Level::from_digits(text.len()).ok_or(CodeError::BadLength(text.len()))?;
        if text.as_bytes()[0] == b'0' || text.as_bytes()[..2] < b"11"[..] {
            return Err(CodeError::BadProvince);
        }
        // At most 13 digits, so it fits.
        Ok(Code(text.parse().map_err(|_| CodeError::NotDigits)?))
    }

    /// From a number already known to be a code (e.g. read back from our own index).
    pub fn from_u64(value: u64) -> Result<Code, CodeError> {
        Code::parse(&value.to_string())
    }

    pub fn as_u64(self) -> u64 {
        self.0
    }

    pub fn level(self) -> Level {
        let digits = self.0.checked_ilog10().map_or(1, |d| d as usize + 1);
        Level::from_digits(digits).expect("invariant: a Code has a valid length")
    }

    /// The code of the enclosing region at `level`, if `level` is above this code's level.
    pub fn ancestor(self, level: Level) -> Option<Code> {
        let own = self.level();
        if level >= own {
            return None;
        }
        let drop = own.digits() - level.digits();
        Some(Code(self.0 / 10u64.pow(drop as u32)))
    }

    pub fn parent(self) -> Option<Code> {
        self.level().parent().and_then(|level| self.ancestor(level))
    }

    pub fn province(self) -> u8 {
        match self.level() {
            Level::Provinsi => self.0 as u8,
            _ => self.ancestor(Level::Provinsi).expect("below provinsi").0 as u8,
        }
    }

    /// The 3-digit TPS number for a TPS code.
    pub fn tps_number(self) -> Option<u16> {
        (self.level() == Level::Tps).then_some((self.0 % 1000) as u16)
    }

    pub fn is_overseas(self) -> bool {
        self.province() == OVERSEAS_PROVINCE
    }
}

/// "Luar Negeri": overseas voting units.
pub const OVERSEAS_PROVINCE: u8 = 99;

/// Provinces that lawfully use the noken/ikat system (a TPS may vote as a bloc): Papua Tengah (94) and
/// Papua Pegunungan (95). The law applies it in 11 of their regencies; we mark the whole provinces because
/// the statute's regency list is not in our data, and a noken mark only ever suppresses soft warnings.
pub const NOKEN_PROVINCES: [u8; 2] = [94, 95];

pub fn is_noken(code: Code) -> bool {
    NOKEN_PROVINCES.contains(&code.province())
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_ancestors() {
        let tps = Code::parse("1101012001003").unwrap();
        assert_eq!(tps.level(), Level::Tps);
        assert_eq!(tps.tps_number(), Some(3));
        assert_eq!(tps.ancestor(Level::Desa).unwrap().to_string(), "1101012001");
        assert_eq!(tps.ancestor(Level::Kecamatan).unwrap().to_string(), "110101");
        assert_eq!(tps.ancestor(Level::KabKota).unwrap().to_string(), "1101");
        assert_eq!(tps.province(), 11);
        assert_eq!(tps.parent().unwrap().level(), Level::Desa);
        assert!(Code::parse("11").unwrap().parent().is_none());
    }

    #[test]
    fn rejects_bad_codes() {
        assert_eq!(Code::parse("11.01"), Err(CodeError::NotDigits));
        assert_eq!(Code::parse("110"), Err(CodeError::BadLength(3)));
        assert_eq!(Code::parse("0101"), Err(CodeError::BadProvince));
        assert_eq!(Code::parse("10"), Err(CodeError::BadProvince));
        assert_eq!(Code::parse(""), Err(CodeError::NotDigits));
        assert!(Code::parse("9901010001001").unwrap().is_overseas());
    }
}
