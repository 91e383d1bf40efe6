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
        assert!(html.contains("Wilayah tidak ditemukan"), "{bad}: {html}");
    }
    for bad in ["11", "1101012001x01", "9999999999999"] {
        let (status, html) = page(&format!("{}/tps/{bad}", server.base));
        assert_eq!(status, 404, "{bad}");
        assert!(html.contains("TPS tidak ditemukan"), "{bad}: {html}");
    }
}
