//! The public site through the real binary: every figure a page shows equals the API's, in both
//! languages, from the nation down to a kelurahan/desa's TPS.

use serde_json::Value;

use crate::util::{gen_and_init, get_json, http, import, Server, TempDir};

/// The figure a page marks with `data-figure="NAME"`, its separators removed.
fn figure(html: &str, name: &str) -> i64 {
    let marker = format!("data-figure=\"{name}\">");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no figure {name}"))
        + marker.len();
    let text: String = html[start..]
        .chars()
        .take_while(|c| *c != '<')
        .filter(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    text.parse()
        .unwrap_or_else(|_| panic!("figure {name}: {text:?}"))
}

fn page(url: &str) -> (u16, String) {
    let (status, _, body) = http("GET", url, b"");
    (status, String::from_utf8(body).unwrap())
}

fn assert_figures_match(html: &str, tally: &Value, positions: &[String]) {
    for name in [
        "valid",
        "invalid",
        "tps_reported",
        "tps_total",
        "rejected_entries",
    ] {
        assert_eq!(figure(html, name), tally[name].as_i64().unwrap(), "{name}");
    }
    for position in positions {
        assert_eq!(
            figure(html, &format!("votes.{position}")),
            tally["votes"][position].as_i64().unwrap(),
            "votes of {position}"
        );
    }
}

#[test]
fn pages_show_the_apis_figures_from_the_nation_down_in_both_languages() {
    let dir = TempDir::new("site");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "3000"]);
    import(&data, &format!("{election}/forms.ndjson"), 1);
    let server = Server::start(&data);
    let national = get_json(&format!("{}/api/v1/regions", server.base));
    let positions: Vec<String> = national["tally"]["votes"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(!positions.is_empty());

    let (status, html) = page(&format!("{}/", server.base));
    assert_eq!(status, 200);
    assert!(html.contains("<html lang=\"id\">") && html.contains("Hasil nasional"));
    assert_figures_match(&html, &national["tally"], &positions);
    // The turnout histogram counts every counted TPS (each has a DPT in a generated registry).
    let binned: i64 = html
        .split("data-bin=\"")
        .skip(1)
        .map(|rest| {
            let text = &rest[rest.find('>').unwrap() + 1..rest.find('<').unwrap()];
            text.replace('.', "").parse::<i64>().unwrap()
        })
        .sum();
    assert_eq!(binned, national["tally"]["tps_reported"].as_i64().unwrap());
    assert_eq!(
        figure(&html, "checkpoint_size"),
        national["checkpoint"]["size"].as_i64().unwrap()
    );

    // The provinces table as CSV: every row the API's figures, exactly.
    let (status, csv) = page(&format!("{}/csv/nasional", server.base));
    assert_eq!(status, 200);
    let mut rows = csv.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    let children = national["children"].as_array().unwrap();
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), children.len());
    for (row, child) in rows.iter().zip(children) {
        // Region names here have no commas or quotes, so a plain split reads them.
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells.len(), header.len(), "{row}");
        assert_eq!(cells[0], child["code"].as_str().unwrap());
        for (name, cell) in header.iter().zip(&cells).skip(2) {
            if let Some(position) = name.strip_prefix("share_") {
                // Tenths of a percent of the valid votes, rounded half up, as the table shows.
                let votes = child["tally"]["votes"][position].as_i64().unwrap();
                let valid = child["tally"]["valid"].as_i64().unwrap();
                let tenths = (votes * 1000 + valid / 2) / valid;
                assert_eq!(
                    *cell,
                    format!("{}.{}", tenths / 10, tenths % 10),
                    "{name} of {row}"
                );
                continue;
            }
            let want = match name.strip_prefix("votes_") {
                Some(position) => &child["tally"]["votes"][position],
                None => &child["tally"][*name],
            };
            assert_eq!(cell.parse::<i64>().ok(), want.as_i64(), "{name} of {row}");
        }
    }

    // Down one branch to a kelurahan/desa, in English, each page against its API.
    let mut code = national["children"][0]["code"]
        .as_str()
        .unwrap()
        .to_string();
    loop {
        let api = get_json(&format!("{}/api/v1/regions/{code}", server.base));
        let (status, html) = page(&format!("{}/wilayah/{code}?lang=en", server.base));
        assert_eq!(status, 200, "{code}");
        assert!(html.contains("<html lang=\"en\">") && html.contains("Provisional"));
        assert!(
            html.contains(&format!("href=\"/wilayah/{code}\"")),
            "a link to Indonesian"
        );
        assert_figures_match(&html, &api["tally"], &positions);
        let child = api["children"][0]["code"].as_str().unwrap().to_string();
        if child.len() == 13 {
            assert!(
                html.contains(&format!("data-code=\"{child}\"")),
                "the desa lists its TPS"
            );
            break;
        }
        assert!(
            html.contains(&format!("href=\"/wilayah/{child}?lang=en\"")),
            "{code} links down to {child}, keeping the language"
        );
        code = child;
    }

    // An injected fault that the rulebook rejects (so it is logged): its TPS page names the rule
    // in both languages.
    let truth: Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("election/truth.json")).unwrap()).unwrap();
    let fault = truth["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            let rule = f["rule"].as_str().unwrap();
            !["SIGNATURE_INVALID", "SIGNER_NOT_ENROLLED", "DUPLICATE"].contains(&rule)
        })
        .expect("a logged rejection among the faults");
    let (tps, rule) = (
        fault["tps"].as_str().unwrap(),
        fault["rule"].as_str().unwrap(),
    );
    let (status, html) = page(&format!("{}/tps/{tps}", server.base));
    assert_eq!(status, 200);
    let described = saksi_election::rules::rule(rule).unwrap();
    assert!(
        html.contains(&format!("data-rule=\"{rule}\"")),
        "{tps}: {rule}"
    );
    for message in [described.id, described.en] {
        let escaped = message
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;");
        assert!(html.contains(&escaped), "{tps}: {message}");
    }

    for bad in ["12x", "1101012001001", "98"] {
        let (status, html) = page(&format!("{}/wilayah/{bad}", server.base));
        assert_eq!(status, 404, "{bad}");
        // A page for a person (not the API's JSON error), in their language.
        assert!(html.starts_with("<!DOCTYPE html>"), "{bad}: {html}");
        assert!(html.contains("Wilayah tidak ditemukan"), "{bad}: {html}");
    }
    for bad in ["11", "1101012001x01", "9999999999999"] {
        let (status, html) = page(&format!("{}/tps/{bad}", server.base));
        assert_eq!(status, 404, "{bad}");
        assert!(html.starts_with("<!DOCTYPE html>"), "{bad}: {html}");
        assert!(html.contains("TPS tidak ditemukan"), "{bad}: {html}");
    }
}

/// The count a list page states (`data-figure="rows"`).
fn rows_of(html: &str) -> i64 {
    figure(html, "rows")
}

/// [`rows_of`], 0 where the page says there are none.
fn rows_or_none(html: &str) -> i64 {
    let marker = "data-figure=\"rows\">";
    let start = html.find(marker).expect("a row count") + marker.len();
    let text: String = html[start..]
        .chars()
        .take_while(|c| *c != '<')
        .filter(|c| c.is_ascii_digit())
        .collect();
    text.parse().unwrap_or(0)
}

#[test]
fn lists_search_map_and_how_to_verify_agree_with_the_api() {
    let dir = TempDir::new("site-lists");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "2000"]);
    import(&data, &format!("{election}/forms.ndjson"), 1);
    import(&data, &format!("{election}/recap.ndjson"), 1);
    let server = Server::start(&data);
    let base = &server.base;
    let national = get_json(&format!("{base}/api/v1/regions"));

    // Discrepancies: the page lists exactly the API's items, and filters as the API does.
    let api = get_json(&format!("{base}/api/v1/discrepancies"));
    let items = api["discrepancies"].as_array().unwrap();
    assert!(!items.is_empty(), "the generator injects inflation");
    let (status, html) = page(&format!("{base}/selisih"));
    assert_eq!(status, 200);
    assert_eq!(rows_of(&html), items.len() as i64);
    for item in items.iter().take(100) {
        let entry = item["entry"].as_u64().unwrap();
        assert!(
            html.contains(&format!("/api/v1/entries/{entry}\"")),
            "{item}"
        );
    }
    let kecamatan = items.iter().filter(|i| i["level"] == "kecamatan").count();
    let (_, html) = page(&format!("{base}/selisih?tingkat=kecamatan"));
    assert_eq!(rows_or_none(&html), kecamatan as i64);
    let (_, html) = page(&format!("{base}/"));
    assert_eq!(figure(&html, "discrepancies"), items.len() as i64);

    // Rejections: as many as the tallies count, each fault's TPS found under its rule and region.
    let (status, html) = page(&format!("{base}/ditolak"));
    assert_eq!(status, 200);
    assert_eq!(
        rows_of(&html),
        national["tally"]["rejected_entries"].as_i64().unwrap()
    );
    let truth: Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("election/truth.json")).unwrap()).unwrap();
    let fault = truth["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "extra_digit")
        .unwrap();
    let (tps, rule) = (
        fault["tps"].as_str().unwrap(),
        fault["rule"].as_str().unwrap(),
    );
    let (_, html) = page(&format!(
        "{base}/ditolak?aturan={rule}&wilayah={}",
        &tps[..4]
    ));
    assert!(
        html.contains(&format!("/tps/{tps}\"")),
        "{tps} under {rule}"
    );
    let (_, html) = page(&format!("{base}/ditolak?aturan=NO_SUCH_RULE"));
    assert_eq!(rows_or_none(&html), 0);

    // Search: a province by part of its name (any case), a TPS by its code, nothing for nonsense.
    let province = &national["children"][1];
    let name = province["name"].as_str().unwrap();
    let word = name.split_whitespace().last().unwrap().to_uppercase();
    let (status, html) = page(&format!("{base}/cari?q={word}"));
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!(
            "href=\"/wilayah/{}\"",
            province["code"].as_str().unwrap()
        )),
        "{word}"
    );
    let (_, html) = page(&format!("{base}/cari?q={tps}&lang=en"));
    assert!(
        html.contains(&format!("href=\"/tps/{tps}?lang=en\"")),
        "{tps}"
    );
    let (_, html) = page(&format!("{base}/cari?q=zzzzqqq"));
    assert_eq!(figure(&html, "results"), 0);

    // The map: a tile for every province and overseas, under each measure.
    for measure in ["pemimpin", "selisih", "partisipasi", "progres"] {
        let (status, html) = page(&format!("{base}/?peta={measure}"));
        assert_eq!(status, 200);
        for child in national["children"].as_array().unwrap() {
            let code = child["code"].as_str().unwrap();
            assert!(
                html.contains(&format!("data-code=\"{code}\"><title>")),
                "{measure}: tile {code}"
            );
        }
    }

    // How to verify: the log's key, as the API states it.
    let log = get_json(&format!("{base}/api/v1/log"));
    let (status, html) = page(&format!("{base}/cara-memeriksa"));
    assert_eq!(status, 200);
    assert!(html.contains(log["vkey"].as_str().unwrap()));
}
