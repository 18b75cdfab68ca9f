//! The dashboard in a real headless chromium, driven through chromedriver (WebDriver) with
//! fantoccini: the page loads, a job appears live, its progress moves, the cancel button
//! cancels it, and a job id made of HTML is shown as text. A screenshot is saved as
//! `target/dashboard.png`.
//!
//! Needs `/usr/bin/chromium` and `chromedriver` (Debian's `chromium` and `chromium-driver`;
//! `.ci/run` installs them). Without them the test is skipped, unless
//! `BACKGROUND_WORKER_BROWSER_REQUIRED=1` (set by `.ci/run`) makes it fail.

#![cfg(feature = "axum")]

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use background_worker::console::{serve, Console, JobIndex, Serving};
use background_worker::{Progress, TaskStatus, Worker};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio_util::sync::CancellationToken;

const CHROMIUM: &str = "/usr/bin/chromium";
/// The bound on every wait for the page.
const WAIT: Duration = Duration::from_secs(20);
/// A job id that would run script if it were inserted as HTML.
const XSS_ID: &str = "<img src=x onerror=alert(1)>";

/// A process killed when dropped (chromedriver).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

fn chromedriver() -> Option<PathBuf> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

/// Waits until `check` gives `Some`, polling every 100 ms, or fails with `what`.
async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn cell_text(browser: &Client, id: &str, class: &str) -> Option<String> {
    let selector = format!(r#"tr[data-id="{id}"] td.{class}"#);
    let cell = browser.find(Locator::Css(&selector)).await.ok()?;
    cell.text().await.ok()
}

async fn progress_value(browser: &Client, id: &str) -> Option<f64> {
    let selector = format!(r#"tr[data-id="{id}"] progress"#);
    let bar = browser.find(Locator::Css(&selector)).await.ok()?;
    bar.attr("value").await.ok()??.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_jobs_live_and_cancels_them() {
    let required = std::env::var("BACKGROUND_WORKER_BROWSER_REQUIRED").is_ok_and(|v| v == "1");
    let Some(driver_path) = chromedriver().filter(|_| Path::new(CHROMIUM).is_file()) else {
        assert!(!required, "chromium or chromedriver is missing");
        eprintln!("skipped: no {CHROMIUM} or chromedriver (apt-get install chromium chromium-driver)");
        return;
    };

    // The console in this process, served as a user would serve it.
    let index = JobIndex::new(1_000);
    let worker = Worker::builder()
        .max_tracked(1_000)
        .observer(index.clone())
        .build();
    let app = Console::new(worker.clone()).index(index).router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        app,
        Serving::default(),
        stop.clone().cancelled_owned(),
    ));

    worker
        .submit("done-before", || async { Ok(()) })
        .await
        .expect("submit");
    worker
        .submit("broken", || async { Err(anyhow::anyhow!("disk full")) })
        .await
        .expect("submit");

    let port = free_port();
    let _driver = Killed(
        Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let profile = std::env::temp_dir().join(format!("bw-dashboard-{}-{port}", std::process::id()));
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1100,700",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let capabilities = match capabilities {
        serde_json::Value::Object(map) => map,
        _ => unreachable!(),
    };
    let driver_url = format!("http://127.0.0.1:{port}");
    let browser = until("chromedriver to start a session", || {
        let capabilities = capabilities.clone();
        let driver_url = driver_url.clone();
        async move {
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&driver_url)
                .await
                .ok()
        }
    })
    .await;

    browser
        .goto(&format!("{base}/dashboard"))
        .await
        .expect("open the dashboard");
    let live = until("the event stream to open", || async {
        let text = browser.find(Locator::Id("live")).await.ok()?.text().await.ok()?;
        (text == "live").then_some(text)
    })
    .await;
    assert_eq!(live, "live");
    assert_eq!(
        until("the failed job", || cell_text(&browser, "broken", "status")).await,
        "failed\ndisk full"
    );

    // A job submitted now appears without a reload, and its progress moves.
    worker
        .submit_with_context("import", |ctx| async move {
            for step in 0..=200u64 {
                ctx.set_progress(Progress::counter(step, 200));
                tokio::select! {
                    () = ctx.cancelled() => return Ok(()),
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
            Ok(())
        })
        .await
        .expect("submit");
    until("the new job to show as running", || async {
        let status = cell_text(&browser, "import", "status").await?;
        (status == "running").then_some(())
    })
    .await;
    let first = until("a progress bar", || progress_value(&browser, "import")).await;
    let later = until("the progress to move", || async {
        let value = progress_value(&browser, "import").await?;
        (value > first).then_some(value)
    })
    .await;
    assert!(later > first);

    // The id made of HTML is text in the page, not an element.
    worker
        .submit_with_context(XSS_ID, |ctx| async move {
            ctx.cancelled().await;
            Ok(())
        })
        .await
        .expect("submit");
    let shown = until("the HTML id to show", || cell_text(&browser, XSS_ID, "id")).await;
    assert_eq!(shown, XSS_ID);
    let images = browser.find_all(Locator::Css("#jobs img")).await.expect("query");
    assert!(images.is_empty(), "the id was parsed as HTML");
    assert!(browser.get_alert_text().await.is_err(), "an alert opened");

    let shot = browser.screenshot().await.expect("screenshot");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).expect("target/");
    std::fs::write(target.join("dashboard.png"), &shot).expect("save the screenshot");

    // Cancel with the button: the page shows it cancelled, and so does the worker.
    browser
        .find(Locator::Css(r#"tr[data-id="import"] button.cancel"#))
        .await
        .expect("a cancel button on the running job")
        .click()
        .await
        .expect("click");
    until("the job to show as cancelled", || async {
        let status = cell_text(&browser, "import", "status").await?;
        (status == "cancelled").then_some(())
    })
    .await;
    assert_eq!(
        worker.get_task_status("import").await,
        Some(TaskStatus::Cancelled)
    );
    let buttons = browser
        .find_all(Locator::Css(r#"tr[data-id="import"] button.cancel"#))
        .await
        .expect("query");
    assert!(buttons.is_empty(), "a finished job has no cancel button");

    // Usable on a phone-sized screen: the table becomes cards, nothing overflows sideways.
    browser.set_window_size(390, 844).await.expect("resize");
    let fits = until("the page to fit a phone's width", || async {
        let fits = browser
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth",
                Vec::new(),
            )
            .await
            .ok()?;
        (fits == serde_json::Value::Bool(true)).then_some(())
    })
    .await;
    assert_eq!(fits, ());
    let shot = browser.screenshot().await.expect("screenshot");
    std::fs::write(target.join("dashboard-phone.png"), &shot).expect("save the screenshot");

    let _ = browser.close().await;
    stop.cancel();
    worker.shutdown().await;
    server.abort();
    let _ = std::fs::remove_dir_all(profile);
}
