//! Synthetic photos of the forms: for each TPS and page, a small real PNG (8-bit greyscale) whose
//! pixels are drawn from the seed, the TPS code and the page, so a form's `evidence` digests name
//! images that exist and can be stored, served, mirrored and checked. They picture nothing; they
//! are stand-ins of the right kind, sized so that a national set stays small.

use saksi_election::code::Code;

use crate::rng::Rng;

/// Pixels: 24 x 16 (a multiple of 8 wide), 465 bytes per photo (deflate's stored blocks: random
/// pixels would not compress anyway, and storing is cheapest to generate). Digesting the photos adds
/// about a second per 100,000 TPS to generation (measured at 40 x 30: 2 s).
const WIDTH: u32 = 24;
const HEIGHT: u32 = 16;
/// Distinct from the tally's and the DPT's draws (see `tally.rs`), so adding photos changes no figure.
const PURPOSE_PHOTO: u64 = 0x5048_4f54_4f00; // "PHOTO"

/// The pages photographed per form: the three pages of the C.Hasil sheet.
pub const PAGES: u8 = 3;

/// The photo of `page` (1-based) of TPS `tps`'s form, as PNG bytes.
pub fn photo_png(seed: u64, tps: Code, page: u8) -> Vec<u8> {
    let mut rng = Rng::new(seed, tps.as_u64(), PURPOSE_PHOTO + u64::from(page));
    // Each row: a filter-type byte (0, none), then its pixels.
    let stride = (WIDTH + 1) as usize;
    let mut rows = vec![0u8; stride * HEIGHT as usize];
    for row in rows.chunks_mut(stride) {
        // Eight pixels per draw: the national set is 2.5 million photos.
        for pixels in row[1..].chunks_mut(8) {
            for (pixel, byte) in pixels.iter_mut().zip(rng.next_u64().to_le_bytes()) {
                // Paper-light grey with darker specks, like a photographed sheet at a glance.
                *pixel = if byte < 24 {
                    40 + byte
                } else {
                    200 + byte % 56
                };
            }
        }
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&WIDTH.to_be_bytes());
    header.extend_from_slice(&HEIGHT.to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale, deflate, no filter set, no interlace
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &zlib_stored(&rows));
    chunk(&mut png, b"IEND", &[]);
    png
}

/// `data` as a zlib stream of one stored (uncompressed) deflate block (RFC 1950, RFC 1951 3.2.4):
/// what a compressor would emit for random pixels, without a compressor's setup per photo (which
/// cost more than the photo: 2.5 million of them nationally).
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let length = u16::try_from(data.len()).expect("a photo's rows fit one stored block");
    let mut out = Vec::with_capacity(data.len() + 11);
    out.extend_from_slice(&[0x78, 0x01]); // deflate, 32 KiB window, no dictionary, fastest
    out.push(0x01); // final block, stored
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&(!length).to_le_bytes());
    out.extend_from_slice(data);
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// A PNG chunk: length, type, data, and the CRC-32 of type and data.
fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_are_deterministic_distinct_pngs() {
        let tps = Code::parse("1101012001001").unwrap();
        let a = photo_png(7, tps, 1);
        assert_eq!(a, photo_png(7, tps, 1));
        assert_ne!(a, photo_png(7, tps, 2));
        assert_ne!(a, photo_png(8, tps, 1));
        assert!(a.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(a.ends_with(&[0xAE, 0x42, 0x60, 0x82]), "IEND's CRC");
        // A real PNG: zlib inflates the IDAT back to the rows.
        let idat_at = a.windows(4).position(|w| w == b"IDAT").unwrap();
        let length = u32::from_be_bytes(a[idat_at - 4..idat_at].try_into().unwrap()) as usize;
        let mut rows = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::ZlibDecoder::new(&a[idat_at + 4..idat_at + 4 + length]),
            &mut rows,
        )
        .unwrap();
        assert_eq!(rows.len(), ((WIDTH + 1) * HEIGHT) as usize);
    }
}
