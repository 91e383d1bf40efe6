//! Evidence photos through the real binary: stored by content and durably, served byte for byte,
//! refused when not an image or too large, stored once under concurrent duplicates, kept across a
//! restart, and bounded per address.

use sha2::{Digest, Sha256};

use crate::util::{gen_and_init, http, Server, TempDir};

/// A real PNG (signature, IHDR, one IDAT of zlib-compressed rows, IEND, each chunk with its CRC):
/// `width` x `height` grey pixels whose shade is `shade`.
pub(crate) fn png(width: u32, height: u32, shade: u8) -> Vec<u8> {
    use std::io::Write;
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale, no interlace
    chunk(&mut out, b"IHDR", &header);
    let mut rows = Vec::new();
    for _ in 0..height {
        rows.push(0); // filter: none
        rows.extend(std::iter::repeat_n(shade, width as usize));
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&rows).unwrap();
    chunk(&mut out, b"IDAT", &z.finish().unwrap());
    chunk(&mut out, b"IEND", &[]);
    out
}

pub(crate) fn digest_of(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn stored_files(data: &str) -> usize {
    let root = std::path::Path::new(data).join("evidence/sha256");
    std::fs::read_dir(root)
        .map(|shards| {
            shards
                .flatten()
                .map(|shard| std::fs::read_dir(shard.path()).unwrap().count())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn photos_are_stored_by_content_served_exactly_and_refused_when_not_images() {
    let dir = TempDir::new("evidence");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "50"]);
    let server = Server::serve(&data, &["--rate-limit", "0", "--photo-rate", "0"]);
    let base = &server.base;

    // A photo: 201 with its digest, then served byte for byte, immutable.
    let photo = png(64, 48, 200);
    let hex = digest_of(&photo);
    let (status, headers, body) = http("POST", &format!("{base}/api/v1/evidence"), &photo);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["digest"], format!("sha256:{hex}"));
    assert_eq!(answer["type"], "image/png");
    assert!(headers
        .to_ascii_lowercase()
        .contains(&format!("location: /evidence/sha256/{hex}")));
    let (status, headers, served) = http("GET", &format!("{base}/evidence/sha256/{hex}"), b"");
    assert_eq!(status, 200);
    assert_eq!(served, photo);
    let headers = headers.to_ascii_lowercase();
    assert!(headers.contains("content-type: image/png"), "{headers}");
    assert!(headers.contains("immutable"), "{headers}");

    // Again: 200, stored before, one file.
    let (status, _, body) = http("POST", &format!("{base}/api/v1/evidence"), &photo);
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["stored"],
        "before"
    );
    assert_eq!(stored_files(&data), 1);

    // Concurrent duplicates of a new photo: every upload succeeds, one file results.
    let second = png(80, 60, 90);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let (status, _, body) = http("POST", &format!("{base}/api/v1/evidence"), &second);
                assert!(
                    status == 200 || status == 201,
                    "{}",
                    String::from_utf8_lossy(&body)
                );
            });
        }
    });
    assert_eq!(stored_files(&data), 2);

    // Not an image, by content (a GIF, text, a PNG signature cut short): 415, nothing stored.
    for bad in [&b"GIF89a\x01\x00\x01\x00"[..], b"{\"form\": 1}", b"\x89PNG"] {
        let (status, _, body) = http("POST", &format!("{base}/api/v1/evidence"), bad);
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (415, Some("UNSUPPORTED_MEDIA_TYPE"))
        );
    }
    // Too large, at the store's bound and past the transport's: 413.
    let limit = 8 << 20;
    for size in [limit + 1, limit + 4096] {
        let mut big = png(8, 8, 1);
        big.resize(size, 0);
        let (status, _, _) = http("POST", &format!("{base}/api/v1/evidence"), &big);
        assert_eq!(status, 413, "{size} bytes");
    }
    assert_eq!(stored_files(&data), 2);

    // Unknown or malformed names: 404 in the API's error shape.
    for name in [
        &digest_of(b"absent")[..],
        "ABCD",
        &hex.to_uppercase(),
        "../../keys/log.key",
    ] {
        let (status, _, _) = http("GET", &format!("{base}/evidence/sha256/{name}"), b"");
        assert_eq!(status, 404, "{name}");
    }

    // Durable: after a restart, the same bytes.
    drop(server);
    let server = Server::serve(&data, &["--rate-limit", "0"]);
    let (status, _, served) = http(
        "GET",
        &format!("{}/evidence/sha256/{hex}", server.base),
        b"",
    );
    assert_eq!((status, served), (200, photo));

    // Per address: a burst of 8 photos, then 429 until the rate refills.
    let statuses: Vec<u16> = (0..12u8)
        .map(|i| {
            http(
                "POST",
                &format!("{}/api/v1/evidence", server.base),
                &png(8, 8, i),
            )
            .0
        })
        .collect();
    assert!(
        statuses[..8].iter().all(|s| *s == 201 || *s == 200),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
}

/// `saksi gen --photos`, `import --photos`, `verify --evidence` against the server and a mirror,
/// `mirror --evidence`; a photo gone from the server and one altered in the mirror are reported.
#[test]
fn every_photo_the_log_names_is_imported_served_mirrored_and_verified() {
    use crate::util::{saksi, text};
    let dir = TempDir::new("evidence-flow");
    let (election, data) = (dir.path("election"), dir.path("data"));
    let out = saksi(&["gen", "--out", &election, "--tps", "60", "--photos"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = saksi(&["init", "--data", &data, "--gen", &election]);
    assert!(out.status.success(), "{}", text(&out));
    let out = saksi(&[
        "import",
        "--data",
        &data,
        "--photos",
        &format!("{election}/photos"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("180 stored"), "{}", text(&out));
    let out = saksi(&[
        "import",
        "--data",
        &data,
        &format!("{election}/forms.ndjson"),
    ]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let vkey = std::fs::read_to_string(format!("{data}/log.vkey")).unwrap();
    let vkey = vkey.trim();

    let server = Server::serve(&data, &["--rate-limit", "0"]);
    let out = saksi(&[
        "verify",
        "--url",
        &server.base,
        "--vkey",
        vkey,
        "--evidence",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("180 photos retrieved"),
        "{}",
        text(&out)
    );

    let (mirror, photos) = (dir.path("mirror"), dir.path("mirror-photos"));
    let out = saksi(&[
        "mirror",
        "--url",
        &server.base,
        "--dir",
        &mirror,
        "--vkey",
        vkey,
        "--evidence",
        &photos,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("180 copied"), "{}", text(&out));
    let out = saksi(&[
        "verify",
        "--dir",
        &mirror,
        "--vkey",
        vkey,
        "--evidence",
        "--evidence-dir",
        &photos,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A photo altered in the mirror, one gone from the server: each named.
    let first = std::fs::read_dir(format!("{photos}/sha256"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let altered = std::fs::read_dir(&first)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&altered).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&altered, bytes).unwrap();
    let out = saksi(&[
        "verify",
        "--dir",
        &mirror,
        "--vkey",
        vkey,
        "--evidence",
        "--evidence-dir",
        &photos,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("does not hash to its name"),
        "{}",
        text(&out)
    );
    let name = altered.file_name().unwrap().to_str().unwrap().to_string();
    std::fs::remove_file(format!("{data}/evidence/sha256/{}/{name}", &name[..2])).unwrap();
    let out = saksi(&[
        "verify",
        "--url",
        &server.base,
        "--vkey",
        vkey,
        "--evidence",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("photo sha256:{name} is missing")),
        "{}",
        text(&out)
    );
}
