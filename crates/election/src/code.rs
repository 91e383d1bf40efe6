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
//! A code's length names its level. Codes are compared as strings, so a region sorts right before
//! everything under it.

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
    pub const ALL: [Level; 5] = [
        Level::Provinsi,
        Level::KabKota,
        Level::Kecamatan,
        Level::Desa,
        Level::Tps,
    ];

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
        Level::ALL
            .into_iter()
            .find(|level| level.digits() == digits)
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

/// A region or TPS code, stored as its ASCII characters (zero-padded). Invariant: its length is one of the
/// five level lengths; its first two characters are a province 11..=99; every other character is a digit,
/// except that overseas codes (province 99) may use uppercase letters for the city part (characters 3
/// and 4): KPU ran out of two-digit city numbers and went on with `99AA`, `99AB`, ...
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Code {
    // Zero padding sorts a region before everything under it.
    bytes: [u8; 13],
    len: u8,
}

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
                write!(
                    f,
                    "a region code has 2, 4, 6, 10 or 13 digits, this one has {n}"
                )
            }
            CodeError::BadProvince => write!(f, "province codes run from 11 to 99"),
        }
    }
}

impl std::error::Error for CodeError {}

impl Code {
    pub fn parse(text: &str) -> Result<Code, CodeError> {
        let raw = text.as_bytes();
        if raw.is_empty() || !raw.iter().all(u8::is_ascii_alphanumeric) {
            return Err(CodeError::NotDigits);
        }
        Level::from_digits(raw.len()).ok_or(CodeError::BadLength(raw.len()))?;
        if !raw[..2].iter().all(u8::is_ascii_digit) {
            return Err(CodeError::NotDigits);
        }
        if raw[..2] < b"11"[..] {
            return Err(CodeError::BadProvince);
        }
        let overseas = raw[..2] == b"99"[..];
        for (i, b) in raw.iter().enumerate() {
            let letter_allowed = overseas && (i == 2 || i == 3);
            if !(b.is_ascii_digit() || (letter_allowed && b.is_ascii_uppercase())) {
                return Err(CodeError::NotDigits);
            }
        }
        let mut bytes = [0u8; 13];
        bytes[..raw.len()].copy_from_slice(raw);
        Ok(Code {
            bytes,
            len: raw.len() as u8,
        })
    }

    /// From a number whose decimal digits are a code.
    pub fn from_u64(value: u64) -> Result<Code, CodeError> {
        Code::parse(&value.to_string())
    }

    /// The TPS numbered `number` (1..=999) in a kelurahan/desa.
    pub fn tps(desa: Code, number: u16) -> Option<Code> {
        if desa.level() != Level::Desa || !(1..=999).contains(&number) {
            return None;
        }
        Code::parse(&format!("{desa}{number:03}")).ok()
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("invariant: ASCII")
    }

    /// A stable number for this code: its decimal value when it has only digits (always, below
    /// province 99), otherwise its base-36 value (wrapping). For seeding and hashing, not for display.
    pub fn as_u64(self) -> u64 {
        let radix = if self.as_str().bytes().all(|b| b.is_ascii_digit()) {
            10
        } else {
            36
        };
        self.as_str().bytes().fold(0u64, |acc, b| {
            let digit = if b.is_ascii_digit() {
                b - b'0'
            } else {
                b - b'A' + 10
            };
            acc.wrapping_mul(radix).wrapping_add(digit as u64)
        })
    }

    pub fn level(self) -> Level {
        Level::from_digits(self.len as usize).expect("invariant: a Code has a valid length")
    }

    /// The code of the enclosing region at `level`, if `level` is above this code's level.
    pub fn ancestor(self, level: Level) -> Option<Code> {
        if level >= self.level() {
            return None;
        }
        let mut bytes = [0u8; 13];
        bytes[..level.digits()].copy_from_slice(&self.bytes[..level.digits()]);
        Some(Code {
            bytes,
            len: level.digits() as u8,
        })
    }

    pub fn parent(self) -> Option<Code> {
        self.level().parent().and_then(|level| self.ancestor(level))
    }

    pub fn province(self) -> u8 {
        (self.bytes[0] - b'0') * 10 + (self.bytes[1] - b'0')
    }

    /// The 3-digit TPS number for a TPS code.
    pub fn tps_number(self) -> Option<u16> {
        (self.level() == Level::Tps)
            .then(|| self.as_str()[10..].parse().expect("invariant: digits"))
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
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({})", self.as_str())
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
        assert_eq!(
            tps.ancestor(Level::Kecamatan).unwrap().to_string(),
            "110101"
        );
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
        assert_eq!(
            Code::parse("99AA010001")
                .unwrap()
                .ancestor(Level::KabKota)
                .unwrap()
                .as_str(),
            "99AA"
        );
        assert_eq!(Code::parse("11AA"), Err(CodeError::NotDigits));
        assert_eq!(Code::parse("99AA01000A1"), Err(CodeError::BadLength(11)));
        assert_eq!(Code::parse("99AA01000A"), Err(CodeError::NotDigits));
        assert!(Code::parse("11").unwrap() < Code::parse("1101").unwrap());
        assert!(Code::parse("1101").unwrap() < Code::parse("1102").unwrap());
        assert_eq!(
            Code::tps(Code::parse("1101012001").unwrap(), 7)
                .unwrap()
                .as_str(),
            "1101012001007"
        );
    }
}
