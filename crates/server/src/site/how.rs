//! `/cara-memeriksa`: how anyone checks this site without trusting it: the verifier key, the
//! checkpoint, the witness policy, and the commands that check the log offline.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;

use super::{html_response, layout, Lang, LangQuery};
use crate::App;

/// `/cara-memeriksa`.
pub(crate) async fn how_to_verify(
    State(app): State<App>,
    Query(query): Query<LangQuery>,
) -> Response {
    let lang = Lang::of(&query);
    let published = app.shared.published();
    let vkey = &app.shared.vkey;
    let fingerprint = vkey.split('+').nth(1).unwrap_or("");
    let policy = app
        .shared
        .state
        .read()
        .expect("not poisoned")
        .witness_policy
        .clone();
    let title = lang.t("Cara memeriksa", "How to verify");
    let body = html! {
        h1 { (title) }
        p { (lang.t(
            "Situs ini tidak perlu dipercaya. Setiap masukan (definisi pemilu, buku aturan, registri, setiap formulir dan koreksi, setiap penolakan) adalah entri log transparansi publik yang hanya dapat ditambah (C2SP tlog-tiles, RFC 6962), dengan checkpoint yang ditandatangani. Siapa pun dapat menghitung ulang setiap angka dan membuktikan bahwa riwayat tidak pernah ditulis ulang.",
            "You need not trust this site. Every input (the election definition, the rulebook, the registry, every form and correction, every rejection) is an entry of a public append-only transparency log (C2SP tlog-tiles, RFC 6962) with signed checkpoints. Anyone can re-derive every figure and prove that history was never rewritten.",
        )) }
        h2 { (lang.t("Kunci pemeriksa log", "The log's verifier key")) }
        p { code class="vkey" data-vkey=(vkey) { (vkey) } }
        p { (lang.t("Sidik jari: ", "Fingerprint: ")) code { (fingerprint) } ". "
            (lang.t(
                "Bandingkan kunci ini dengan yang diterbitkan di tempat lain (pengumuman KPU, surat kabar, pemantau): halaman ini dikirim oleh server yang sedang diperiksa.",
                "Compare this key with one published elsewhere (the commission's announcement, newspapers, observers): this page is sent by the server under check.",
            )) }
        h2 { (lang.t("Checkpoint terbaru", "The latest checkpoint")) }
        p { (lang.t("Ukuran ", "Size ")) span data-figure="checkpoint_size" { (published.checkpoint.size) }
            (lang.t(" entri; akar ", " entries; root ")) code { (published.checkpoint.root.to_base64()) } ". "
            a href="/log/checkpoint" { "/log/checkpoint" } }
        pre class="note" { (published.note) }
        h2 { (lang.t("Saksi log (cosigner)", "Log witnesses (cosigners)")) }
        @match &policy {
            Some(policy) => {
                p { (lang.t("Checkpoint diterbitkan hanya setelah ", "A checkpoint is published only once ")) (policy.quorum)
                    (lang.t(" dari saksi berikut menandatanganinya bersama (C2SP tlog-witness):", " of these witnesses have cosigned it (C2SP tlog-witness):")) }
                ul { @for (key, url) in &policy.witnesses { li { code class="vkey" { (key) } " " (url) } } }
            }
            None => p { (lang.t(
                "Log ini belum menetapkan kebijakan saksi: checkpoint hanya ditandatangani oleh kunci log. Pemantau tetap dapat mendeteksi percabangan dengan `saksi verify --state`.",
                "This log has no witness policy yet: checkpoints carry only the log key's signature. Monitors still catch forks with `saksi verify --state`.",
            )) },
        }
        h2 { (lang.t("Di peramban Anda", "In your browser")) }
        p { (lang.t(
            "Setiap halaman TPS memeriksa dirinya sendiri: peramban mengambil checkpoint dan tile dari /log/, memeriksa tanda tangan (WebCrypto Ed25519) dan bukti inklusi setiap entri TPS, lalu membandingkan setiap angka di halaman dengan entrinya. Anda dapat meminta pemeriksaan terhadap salinan log lain dengan ?mirror=URL. Angka wilayah adalah jumlah yang dihitung server; untuk memeriksanya seluruhnya gunakan `saksi verify` di bawah.",
            "Every TPS page checks itself: the browser fetches the checkpoint and tiles from /log/, checks the signature (WebCrypto Ed25519) and the inclusion proof of each of the TPS's entries, then compares every figure on the page with its entry. You can ask for the check against another copy of the log with ?mirror=URL. Region figures are sums the server computed; to check them all, use `saksi verify` below.",
        )) }
        h2 { (lang.t("Di komputer Anda", "On your own computer")) }
        p { (lang.t(
            "Memeriksa seluruh log: checkpoint, setiap tile dan entri, setiap tanda tangan petugas, setiap putusan menurut buku aturan, dan setiap angka yang diterbitkan API:",
            "Check the whole log: checkpoint, every tile and entry, every officer's signature, every verdict under the rulebook, and every figure the API publishes:",
        )) }
        pre { "saksi verify --url " span class="origin" { "http://HOST" } " --vkey '" (vkey) "' --state saksi-monitor.json" }
        p { (lang.t(
            "Dengan --state, setiap pemeriksaan berikutnya juga membuktikan bahwa log baru adalah kelanjutan dari yang sudah diperiksa (bukti konsistensi). Salinan log (`saksi mirror`) dapat diperiksa dengan --dir.",
            "With --state, every later run also proves the new log extends the one already checked (a consistency proof). A copy of the log (`saksi mirror`) is checked with --dir.",
        )) }
        p { (lang.t(
            "Dengan pustaka Go sumdb (golang.org/x/mod/sumdb/note dan sumdb/tlog), terlepas dari kode saksi:",
            "With Go's sumdb libraries (golang.org/x/mod/sumdb/note and sumdb/tlog), independently of saksi's code:",
        )) }
        pre { "scripts/go-interop.sh LOGDIR '" (vkey) "'" }
        p { (lang.t("Format: ", "Formats: "))
            a href="https://c2sp.org/tlog-tiles" { "C2SP tlog-tiles" } ", "
            a href="https://c2sp.org/signed-note" { "signed-note" } ", "
            a href="https://c2sp.org/tlog-checkpoint" { "tlog-checkpoint" } ", "
            a href="/api/v1/rulebook" { (lang.t("buku aturan", "the rulebook")) } ", "
            a href="/api/v1/openapi.json" { "OpenAPI" } "." }
    };
    html_response(layout(lang, "/cara-memeriksa", title, body))
}
