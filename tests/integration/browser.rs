//! The site in a real browser: Debian's chromium, driven through its chromedriver (WebDriver) by
//! fantoccini, against the real binary. A reader clicks from the nation down to a TPS, sees the
//! figures the API gives, watches the page verify itself against the signed log, switches language,
//! downloads a CSV; a proxy that alters one vote count (in HTML and API answers, not in `/log/`)
//! makes the check fail. Screenshots at 1280 and 360 px wide go to `target/site-screenshots/`.
//! Skips, saying so, where no chromium/chromedriver is installed (`.ci/run` installs both).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::util::{gen_and_init, get_json, http, saksi, text, Server, TempDir};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page may take to reach a verification outcome before the test gives up.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(20);
/// Forms held back from the import and submitted while a page is open, to watch it update live.
const LATE_FORMS: usize = 30;

/// A chromedriver on a free port of 127.0.0.1, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What an [`AlteringProxy`] changes.
#[derive(Clone, Copy)]
enum Lie {
    /// One more vote for pair 01 in every HTML page (`data-field="votes.01">N`) and API answer
    /// (`"01":N`), `/log/` untouched: a server lying about a figure the signed log does not hold.
    Figures,
    /// One more vote for pair 01 in the first total a page shows (`data-figure="votes.01">N`): a
    /// region total that is not the sum of its TPS.
    Total,
    /// One more vote for pair 01 inside the entry bundles of `/log/`, pages untouched: a log
    /// whose entries no longer match its signed checkpoint.
    Log,
}

/// A proxy in front of the server that tells one [`Lie`].
struct AlteringProxy {
    base: String,
}

impl AlteringProxy {
    fn start(upstream: &str, lie: Lie) -> AlteringProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let upstream = upstream.clone();
                std::thread::spawn(move || proxy_one(stream, &upstream, lie));
            }
        });
        AlteringProxy { base }
    }
}

fn proxy_one(mut stream: TcpStream, upstream: &str, lie: Lie) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&request).to_string();
    let Some(path) = head.split_whitespace().nth(1) else {
        return;
    };
    let (status, headers, mut body) = http("GET", &format!("{upstream}{path}"), b"");
    match lie {
        Lie::Figures if !path.starts_with("/log/") => {
            body = add_one_after(&body, b"data-field=\"votes.01\">");
            body = add_one_after(&body, b"\"01\":");
        }
        Lie::Total if !path.starts_with("/log/") => {
            body = add_one_after(&body, b"data-figure=\"votes.01\">");
        }
        Lie::Log if path.starts_with("/log/tile/entries/") => {
            body = add_one_after(&body, b"\"votes\":{\"01\":");
        }
        _ => {}
    }
    let content_type = headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "text/plain".into());
    // A mirror for another origin's page must allow it, as saksi's own /log/ does.
    let cors = if headers
        .to_ascii_lowercase()
        .contains("access-control-allow-origin: *")
    {
        "Access-Control-Allow-Origin: *\r\n"
    } else {
        ""
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n{cors}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(&body);
}

/// `bytes` with the number right after the first `marker` increased by one.
fn add_one_after(bytes: &[u8], marker: &[u8]) -> Vec<u8> {
    let Some(at) = bytes.windows(marker.len()).position(|w| w == marker) else {
        return bytes.to_vec();
    };
    let start = at + marker.len();
    let end = start
        + bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
    let Ok(n) = std::str::from_utf8(&bytes[start..end])
        .unwrap()
        .parse::<u64>()
    else {
        return bytes.to_vec();
    };
    let mut out = bytes[..start].to_vec();
    out.extend_from_slice((n + 1).to_string().as_bytes());
    out.extend_from_slice(&bytes[end..]);
    out
}

fn browser_installed() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    eprintln!(
        "skipping the browser tests: {CHROMIUM} or {CHROMEDRIVER} is absent (apt-get install chromium chromium-driver)"
    );
    false
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/site-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn connect(driver: &Driver) -> Client {
    connect_with(driver, true).await
}

/// A session with script on or off (a reader whose browser runs no JavaScript).
async fn connect_with(driver: &Driver, script: bool) -> Client {
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            // As root chromium needs --no-sandbox; the network flags keep it from calling home on
            // a machine with no internet.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--window-size=1280,1000"],
            "prefs": {"profile.managed_default_content_settings.javascript": if script { 1 } else { 2 }},
        },
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a chromium session")
}

/// Every `data-figure` the page shows, separators removed (what a reader sees, as numbers).
async fn figures(client: &Client) -> BTreeMap<String, i64> {
    let pairs = client
        .execute(
            "return Array.from(document.querySelectorAll('[data-figure]'), e => [e.dataset.figure, e.textContent]);",
            vec![],
        )
        .await
        .unwrap();
    pairs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|pair| {
            let digits: String = pair[1]
                .as_str()?
                .chars()
                .filter(|c| c.is_ascii_digit())
                .collect();
            Some((pair[0].as_str()?.to_string(), digits.parse().ok()?))
        })
        .collect()
}

fn assert_tally_shown(shown: &BTreeMap<String, i64>, tally: &Value, where_: &str) {
    for name in [
        "valid",
        "invalid",
        "tps_reported",
        "tps_total",
        "rejected_entries",
    ] {
        assert_eq!(
            shown.get(name).copied(),
            tally[name].as_i64(),
            "{name} on {where_}"
        );
    }
    for (position, votes) in tally["votes"].as_object().unwrap() {
        assert_eq!(
            shown.get(&format!("votes.{position}")).copied(),
            votes.as_i64(),
            "votes of {position} on {where_}"
        );
    }
}

/// Clicks the first child row's link of the region table and returns the code it led to.
async fn click_first_child(client: &Client) -> String {
    let link = client
        .find(Locator::Css("table tbody tr[data-code] th a"))
        .await
        .expect("a child row with a link");
    let row_code = client
        .execute(
            "return document.querySelector('table tbody tr[data-code]').dataset.code;",
            vec![],
        )
        .await
        .unwrap();
    link.click().await.unwrap();
    client
        .wait()
        .for_url(&url_ending_with(client, row_code.as_str().unwrap()).await)
        .await
        .unwrap();
    row_code.as_str().unwrap().to_string()
}

async fn url_ending_with(client: &Client, code: &str) -> url::Url {
    let current = client.current_url().await.unwrap();
    let path = if code.len() == 13 {
        format!("/tps/{code}")
    } else {
        format!("/wilayah/{code}")
    };
    current.join(&path).unwrap()
}

/// Waits for `#verification` to leave `pending`, and returns its state and words.
async fn verification(client: &Client) -> (String, String) {
    let deadline = Instant::now() + VERIFY_TIMEOUT;
    loop {
        let state = client
            .execute(
                "const b = document.getElementById('verification'); return [b.dataset.state, b.querySelector('.outcome').textContent];",
                vec![],
            )
            .await
            .unwrap();
        let (state, words) = (
            state[0].as_str().unwrap().to_string(),
            state[1].as_str().unwrap().to_string(),
        );
        if state != "pending" || Instant::now() > deadline {
            return (state, words);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(client: &Client, name: &str) {
    for width in [1280, 360] {
        client.set_window_size(width, 1000).await.unwrap();
        let png = client.screenshot().await.unwrap();
        let path = screenshots_dir().join(format!("{name}-{width}.png"));
        std::fs::write(&path, png).unwrap();
    }
    client.set_window_size(1280, 1000).await.unwrap();
}

/// The browser's console messages at level SEVERE since the last call (chromedriver's log
/// endpoint; WebDriver itself has none).
async fn console_errors(client: &Client) -> Vec<String> {
    #[derive(Debug)]
    struct BrowserLog;
    impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
        fn endpoint(
            &self,
            base: &url::Url,
            session: Option<&str>,
        ) -> Result<url::Url, url::ParseError> {
            base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
        }
        fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
            (
                http::Method::POST,
                Some(r#"{"type":"browser"}"#.to_string()),
            )
        }
    }
    let log = client.issue_cmd(BrowserLog).await.unwrap();
    log.as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["level"] == "SEVERE")
        .map(|m| m["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_reader_clicks_down_to_a_tps_and_watches_it_verify_and_an_altered_page_fail() {
    if !browser_installed() {
        return;
    }
    let dir = TempDir::new("browser");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "3000"]);
    let forms = std::fs::read_to_string(format!("{election}/forms.ndjson")).unwrap();
    let lines: Vec<&str> = forms.lines().collect();
    let (early, late) = lines.split_at(lines.len() - LATE_FORMS);
    std::fs::write(dir.path("early.ndjson"), early.join("\n") + "\n").unwrap();
    let out = saksi(&["import", "--data", &data, &dir.path("early.ndjson")]);
    // 1: the injected faults are rejected.
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    // The poll witnesses' copies too (misread ones are rejected by the rulebook: exit 1).
    let out = saksi(&[
        "import",
        "--data",
        &data,
        &format!("{election}/copies.ndjson"),
    ]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let truth: Value =
        serde_json::from_slice(&std::fs::read(format!("{election}/truth.json")).unwrap()).unwrap();
    let server = Server::start(&data);
    let proxy = AlteringProxy::start(&server.base, Lie::Figures);
    let forged_log = AlteringProxy::start(&server.base, Lie::Log);
    let inflated = AlteringProxy::start(&server.base, Lie::Total);
    let driver = Driver::start();
    let rulebook = get_json(&format!("{}/api/v1/rulebook", server.base));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = connect(&driver).await;
        let base = &server.base;

        // The nation, then one click per level down to a kelurahan/desa: every figure the API's.
        client.goto(&format!("{base}/")).await.unwrap();
        let national = get_json(&format!("{base}/api/v1/regions"));
        assert_tally_shown(&figures(&client).await, &national["tally"], "/");
        screenshot(&client, "nation").await;

        // Sort the provinces by valid votes with a click on the column's header.
        let valid_column = national["tally"]["votes"].as_object().unwrap().len() + 2;
        client
            .find(Locator::Css(&format!("table.sortable thead th:nth-child({valid_column}) button")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let column = format!("return Array.from(document.querySelectorAll('table.sortable tbody tr'), r => r.cells[{}].textContent.replace(/[^0-9]/g, '') * 1);", valid_column - 1);
        let sorted: Vec<i64> = serde_json::from_value(client.execute(&column, vec![]).await.unwrap()).unwrap();
        assert!(sorted.windows(2).all(|w| w[0] <= w[1]), "{sorted:?}");

        // Forms arrive while the page is open: its figures follow without a reload, the reader's
        // place (scroll position, sort order) kept.
        client.execute("window.scrollTo(0, 300); window.saksiMark = 1;", vec![]).await.unwrap();
        for line in late {
            let (status, _, body) = http("POST", &format!("{base}/api/v1/forms"), line.as_bytes());
            assert!(status < 500, "{}", String::from_utf8_lossy(&body));
        }
        let updated = get_json(&format!("{base}/api/v1/regions"));
        assert_ne!(updated["tally"]["tps_reported"], national["tally"]["tps_reported"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while figures(&client).await.get("tps_reported").copied() != updated["tally"]["tps_reported"].as_i64() {
            assert!(Instant::now() < deadline, "the page did not update");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_tally_shown(&figures(&client).await, &updated["tally"], "/ after the update");
        let kept = client.execute("return [window.saksiMark, window.scrollY];", vec![]).await.unwrap();
        assert_eq!(kept[0], 1, "no reload");
        assert_eq!(kept[1], 300, "the scroll position is kept");
        let after: Vec<i64> = serde_json::from_value(client.execute(&column, vec![]).await.unwrap()).unwrap();
        assert_eq!(after.len(), sorted.len());
        client.goto(&format!("{base}/")).await.unwrap();
        let mut code = String::new();
        for level in ["provinsi", "kabupaten/kota", "kecamatan", "desa"] {
            code = click_first_child(&client).await;
            let api = get_json(&format!("{base}/api/v1/regions/{code}"));
            assert_tally_shown(&figures(&client).await, &api["tally"], level);
            if level == "provinsi" {
                screenshot(&client, "provinsi").await;
            }
        }
        screenshot(&client, "desa").await;
        // The desa page checks its TPS rows against their entries, and its totals against their sums.
        let (state, words) = verification(&client).await;
        assert_eq!(state, "verified", "{words}");
        let sums = client
            .execute("return document.getElementById('verification').dataset.sums;", vec![])
            .await
            .unwrap();
        // Every pair's votes and the valid votes.
        let totals = national["tally"]["votes"].as_object().unwrap().len() + 1;
        assert_eq!(sums.as_str(), Some(totals.to_string().as_str()), "{words}");
        let desa = code.clone();

        // The desa's first TPS: its figures, then the browser's own check against the log.
        let tps = click_first_child(&client).await;
        let api = get_json(&format!("{base}/api/v1/tps/{tps}"));
        let shown = figures(&client).await;
        for (position, votes) in api["current"]["entry"]["form"]["votes"]
            .as_object()
            .unwrap()
        {
            assert_eq!(shown[&format!("votes.{position}")], votes.as_i64().unwrap());
        }
        assert!(tps.starts_with(&code), "{tps} is in {code}");
        let (state, words) = verification(&client).await;
        assert_eq!(state, "verified", "{words}");
        assert!(words.contains("Terverifikasi"), "{words}");
        let millis = client
            .execute("return document.getElementById('verification').dataset.millis;", vec![])
            .await
            .unwrap();
        eprintln!("TPS page {tps} verified in the browser in {millis} ms (fetches, signature, proofs, figures)");
        screenshot(&client, "tps").await;
        assert_eq!(console_errors(&client).await, Vec::<String>::new());

        // English with one click, kept as the reader goes up the breadcrumbs.
        client
            .find(Locator::Css("header a[hreflang=en]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        client
            .wait()
            .for_element(Locator::Css("html[lang=en]"))
            .await
            .unwrap();
        let (state, words) = verification(&client).await;
        assert_eq!(state, "verified", "{words}");
        assert!(words.starts_with("Verified"), "{words}");
        client
            .find(Locator::Css("nav.crumbs li:nth-child(2) a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        client
            .wait()
            .for_element(Locator::Css("html[lang=en]"))
            .await
            .unwrap();
        assert!(client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with("?lang=en"));

        // The CSV of that province's table, fetched as the download link does, row by row the API's.
        let province = &tps[..2];
        let csv = client
            .execute(
                "return fetch(document.querySelector('a[download]').href).then(r => r.text());",
                vec![],
            )
            .await
            .unwrap();
        let api = get_json(&format!("{base}/api/v1/regions/{province}"));
        let rows: Vec<&str> = csv.as_str().unwrap().lines().skip(1).collect();
        let children = api["children"].as_array().unwrap();
        assert_eq!(rows.len(), children.len());
        for (row, child) in rows.iter().zip(children) {
            assert!(row.starts_with(&format!("{},", child["code"].as_str().unwrap())));
            let valid = child["tally"]["valid"].as_i64().unwrap().to_string();
            assert!(
                row.split(',').any(|f| f == valid),
                "{row} has valid {valid}"
            );
        }

        // An injected fault's TPS: its rule in both languages, and the page still verifies.
        let fault = truth["faults"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == "extra_digit")
            .expect("the generator injects an extra digit");
        let (fault_tps, rule) = (
            fault["tps"].as_str().unwrap(),
            fault["rule"].as_str().unwrap(),
        );
        client
            .goto(&format!("{base}/tps/{fault_tps}?lang=en"))
            .await
            .unwrap();
        let text = client
            .find(Locator::Css(&format!("[data-rule={rule}]")))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let entry = rulebook["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["code"] == rule)
            .unwrap();
        assert!(text.contains(entry["id"].as_str().unwrap()), "{text}");
        assert!(text.contains(entry["en"].as_str().unwrap()), "{text}");
        let (state, words) = verification(&client).await;
        assert_eq!(state, "verified", "{words}");
        screenshot(&client, "tps-rejected").await;
        assert_eq!(console_errors(&client).await, Vec::<String>::new());

        // Through the altering proxy: the page shows one more vote than the log holds, and says so.
        client
            .goto(&format!("{}/tps/{tps}", proxy.base))
            .await
            .unwrap();
        let (state, words) = verification(&client).await;
        assert_eq!(state, "failed", "{words}");
        assert!(words.contains("votes.01"), "{words}");
        screenshot(&client, "tps-altered").await;

        // The same lie on the desa page: a TPS row's figure disagrees with its entry.
        client
            .goto(&format!("{}/wilayah/{desa}", proxy.base))
            .await
            .unwrap();
        let (state, words) = verification(&client).await;
        assert_eq!(state, "failed", "{words}");
        assert!(words.contains("votes.01"), "{words}");

        // A desa total inflated by one vote, every TPS row true: the sum check catches it.
        client
            .goto(&format!("{}/wilayah/{desa}", inflated.base))
            .await
            .unwrap();
        let (state, words) = verification(&client).await;
        assert_eq!(state, "failed", "{words}");
        assert!(words.contains("votes.01") && words.contains("jumlah"), "{words}");

        // The same lie checked against a mirror of the log (the server's own /log/, as another
        // origin would serve it): still failed, since the figures, not the log, were changed.
        client
            .goto(&format!("{}/tps/{tps}?mirror={base}/log/", proxy.base))
            .await
            .unwrap();
        let (state, words) = verification(&client).await;
        assert_eq!(state, "failed", "{words}");
        assert!(words.contains("votes.01"), "{words}");

        // A log whose entry was changed after it was signed: the page's figures are the server's
        // (true), but the log's bytes no longer lead to the signed root.
        client
            .goto(&format!("{base}/tps/{tps}?mirror={}/log/", forged_log.base))
            .await
            .unwrap();
        let (state, words) = verification(&client).await;
        assert_eq!(state, "failed", "{words}");
        assert!(words.contains("checkpoint"), "{words}");

        // A TPS with poll witnesses' copies: every copy's figure is checked against its own entry.
        let with_copies = truth["copy_disagreements"][0]["tps"].as_str().unwrap();
        client.goto(&format!("{base}/tps/{with_copies}")).await.unwrap();
        let (state, words) = verification(&client).await;
        assert_eq!(state, "verified", "{words}");
        let copy_cells = client
            .find_all(Locator::Css("table.copies td[data-entry][data-field]"))
            .await
            .unwrap()
            .len();
        assert!(copy_cells >= 6, "{copy_cells} copy figures marked for the check");
        screenshot(&client, "tps-copies").await;
        assert_eq!(console_errors(&client).await, Vec::<String>::new());

        // Search from any page in a few keystrokes: "/", the TPS code, Enter, then its link.
        client.goto(&format!("{base}/selisih")).await.unwrap();
        let slash = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: '/' })
            .then(KeyAction::Up { value: '/' });
        client.perform_actions(slash).await.unwrap();
        client
            .active_element()
            .await
            .unwrap()
            .send_keys(&format!("{tps}\u{E007}"))
            .await
            .unwrap();
        let result = client
            .wait()
            .for_element(Locator::Css(&format!("ul.results a[href='/tps/{tps}']")))
            .await
            .unwrap();
        result.click().await.unwrap();
        client.wait().for_element(Locator::Id("verification")).await.unwrap();
        assert!(client.current_url().await.unwrap().path().ends_with(&tps));

        client.close().await.unwrap();
    });
    eprintln!("screenshots in {}", screenshots_dir().display());
}

/// This machine's first non-loopback IPv4 address, if it has one (`hostname -I`).
fn non_loopback_address() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8(out.stdout)
        .ok()?
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(String::from)
}

#[test]
fn a_page_over_plain_http_from_another_address_says_it_cannot_check() {
    if !browser_installed() {
        return;
    }
    let Some(address) = non_loopback_address() else {
        eprintln!("skipping: this machine has no non-loopback IPv4 address to serve plain HTTP on");
        return;
    };
    let dir = TempDir::new("browser-insecure");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "200"]);
    let out = saksi(&[
        "import",
        "--data",
        &data,
        &format!("{election}/forms.ndjson"),
    ]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let server = Server::spawn(
        &[
            "serve",
            "--data",
            &data,
            "--addr",
            &format!("{address}:0"),
            "--rate-limit",
            "0",
        ],
        "serving on ",
    );
    let national = get_json(&format!("{}/api/v1/regions", server.base));
    let mut code = national["children"][0]["code"]
        .as_str()
        .unwrap()
        .to_string();
    while code.len() < 13 {
        let api = get_json(&format!("{}/api/v1/regions/{code}", server.base));
        code = api["children"][0]["code"].as_str().unwrap().to_string();
    }
    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = connect(&driver).await;
        client
            .goto(&format!("{}/tps/{code}?lang=en", server.base))
            .await
            .unwrap();
        // Not a secure context: WebCrypto is absent, and the page says so instead of claiming.
        let (state, words) = verification(&client).await;
        assert_eq!(state, "unavailable", "{words}");
        assert!(words.contains("HTTPS"), "{words}");
        client.close().await.unwrap();
    });
}

/// Waits for the report form's outcome to leave pending, and returns its state and words.
async fn report_outcome(client: &Client) -> (String, String) {
    let deadline = Instant::now() + VERIFY_TIMEOUT;
    loop {
        let state = client
            .execute(
                "const b = document.getElementById('report-outcome'); return [b.dataset.state, b.textContent];",
                vec![],
            )
            .await
            .unwrap();
        let (state, words) = (
            state[0].as_str().unwrap_or_default().to_string(),
            state[1].as_str().unwrap_or_default().to_string(),
        );
        if (state != "pending" && !state.is_empty()) || Instant::now() > deadline {
            return (state, words);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_reader_files_a_report_signed_in_the_browser_and_one_without_script() {
    if !browser_installed() {
        return;
    }
    let dir = TempDir::new("browser-report");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "40"]);
    let tps = std::fs::read_to_string(format!("{election}/registry/tps.csv"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let server = Server::serve(&data, &["--rate-limit", "0"]);
    let base = server.base.clone();
    let out = saksi(&["contact", "--new-identity", &dir.path("bawaslu.age")]);
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let authority = format!("{data}-authority/authority.key");
    let out = saksi(&[
        "enroll",
        "--authority-key",
        &authority,
        "--oversight-recipient",
        &recipient,
        "--url",
        &base,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // Under a (pretend) flood the browser must do proof of work too.
    let out = saksi(&["intake", "--data", &data, "--pow-bits", "8", "--url", &base]);
    assert!(out.status.success(), "{}", text(&out));
    let operator =
        get_json(&format!("{base}/api/v1/entries/0"))["statement"]["genesis"]["operator"].clone();

    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let indexes = runtime.block_on(async {
        let client = connect(&driver).await;
        let mut indexes = Vec::new();
        for words in [
            "Kotak suara dibuka sebelum penghitungan.",
            "Saksi 02 diminta pulang.",
        ] {
            client.goto(&format!("{base}/tps/{tps}")).await.unwrap();
            // The script takes the form over only where this browser signs Ed25519.
            let signing = client
                .execute(
                    "return document.querySelector('form.report-form').dataset.signing || '';",
                    vec![],
                )
                .await
                .unwrap();
            let deadline = Instant::now() + VERIFY_TIMEOUT;
            loop {
                let now = client
                    .execute(
                        "return document.querySelector('form.report-form').dataset.signing || '';",
                        vec![],
                    )
                    .await
                    .unwrap();
                if now == "browser" {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "lapor.js did not take the form over"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = signing;
            client
                .find(Locator::Css("#report-category"))
                .await
                .unwrap()
                .select_by_value("counting")
                .await
                .unwrap();
            client
                .find(Locator::Css("#report-text"))
                .await
                .unwrap()
                .send_keys(words)
                .await
                .unwrap();
            client
                .find(Locator::Css("#report-contact"))
                .await
                .unwrap()
                .send_keys("Rahmat, 0813-1111-2222")
                .await
                .unwrap();
            client
                .find(Locator::Css("form.report-form button[type=submit]"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            let (state, shown) = report_outcome(&client).await;
            assert_eq!(state, "verified", "{shown}");
            let index: u64 = client
                .execute(
                    "return Number(document.getElementById('report-outcome').dataset.index);",
                    vec![],
                )
                .await
                .unwrap()
                .as_u64()
                .unwrap();
            indexes.push(index);
            client
                .execute(
                    "document.getElementById('report-outcome').scrollIntoView();",
                    vec![],
                )
                .await
                .unwrap();
            screenshot(&client, "report-filed").await;
        }
        assert!(console_errors(&client).await.is_empty());
        client.close().await.unwrap();
        indexes
    });

    // Both entries are the browser's: its own key (the same for both), not the server's, the
    // words and category the reader gave, contact details only as ciphertext.
    let first = get_json(&format!("{base}/api/v1/entries/{}", indexes[0]));
    let second = get_json(&format!("{base}/api/v1/entries/{}", indexes[1]));
    assert_eq!(first["report"]["category"], "counting");
    assert_eq!(
        first["report"]["reporter"], second["report"]["reporter"],
        "the key is kept"
    );
    assert_ne!(first["report"]["reporter"], operator);
    assert!(first["report"]["contact"].is_string());
    assert!(!first.to_string().contains("Rahmat"));
    let listed = get_json(&format!("{base}/api/v1/reports?region={tps}"));
    assert_eq!(
        listed["reports"][0]["text"],
        "Kotak suara dibuka sebelum penghitungan."
    );
    assert_eq!(listed["reports"][0]["signed_by"], "reporter");

    // Without script the form posts to /lapor: the server signs on the reader's behalf, says so,
    // and answers with the receipt.
    runtime.block_on(async {
        let client = connect_with(&driver, false).await;
        client.goto(&format!("{base}/tps/{tps}")).await.unwrap();
        client
            .find(Locator::Css("#report-category"))
            .await
            .unwrap()
            .select_by_value("voter_list")
            .await
            .unwrap();
        client
            .find(Locator::Css("#report-text"))
            .await
            .unwrap()
            .send_keys("Nama pemilih dipakai orang lain.")
            .await
            .unwrap();
        // datetime-local takes typed digits in the browser's own order; set it as a value.
        client
            .execute(
                "document.getElementById('report-when').value = '2024-02-14T09:15';",
                vec![],
            )
            .await
            .ok();
        client
            .find(Locator::Css("form.report-form button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // The answer is a new page: wait for it (a loaded machine takes a moment to navigate).
        client
            .wait()
            .at_most(VERIFY_TIMEOUT)
            .for_element(Locator::Css("p#report-outcome[data-state=logged]"))
            .await
            .expect("the answer page with the receipt");
        let page = client.source().await.unwrap();
        assert!(
            page.contains("atas nama Anda") && page.contains("c2sp.org/tlog-proof@v1"),
            "{page}"
        );
        screenshot(&client, "report-without-script").await;
        client.close().await.unwrap();
    });
    let listed = get_json(&format!("{base}/api/v1/reports?region={tps}"));
    let server_signed = &listed["reports"][2];
    assert_eq!(server_signed["signed_by"], "server", "{listed}");
    assert_eq!(server_signed["category"]["code"], "voter_list");
    let vkey = std::fs::read_to_string(format!("{data}/log.vkey")).unwrap();
    let out = saksi(&["verify", "--url", &base, "--vkey", vkey.trim()]);
    assert!(out.status.success(), "{}", text(&out));
}
