//! Perch.app end to end, under Xvfb with a private D-Bus: `tauri-driver` (WebDriver, over
//! WebKitWebDriver) drives the real app, started with `PERCH_OPEN=models` over a data
//! folder holding the SmolLM2 test model. The models window shows the model with its
//! verdict; loading it works (checked through the API); the chat window (opened beside
//! it) streams an answer; screenshots are kept under the target folder's `tmp/app-screenshots`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

use common::{free_port, home_with_test_model, screenshots, spawn, until, Desktop};

/// The key of an element reference in WebDriver's answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver session on the app.
struct Session {
    http: reqwest::blocking::Client,
    url: String,
}

impl Session {
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().unwrap().json().unwrap();
        answer["value"].clone()
    }

    /// The first element matching `css`, once there is one.
    fn find(&self, css: &str, within: Duration) -> String {
        let start = Instant::now();
        loop {
            let found = self.call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            );
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(
                start.elapsed() < within,
                "no {css} within {within:?}: {found}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Makes the window showing the page at `hash` (`#/chat`) the current one.
    fn switch_to(&self, hash: &str) {
        let handles = self.call(reqwest::Method::GET, "/window/handles", None);
        let found = handles.as_array().unwrap().iter().any(|handle| {
            self.call(
                reqwest::Method::POST,
                "/window",
                Some(json!({"handle": handle})),
            );
            self.script("return location.hash") == hash
        });
        assert!(found, "a window at {hash} among {handles}");
    }

    /// The text of the first element matching `css`, as the page renders it.
    fn text(&self, css: &str) -> String {
        let script = format!("return document.querySelector({css:?})?.innerText ?? ''");
        self.script(&script).as_str().unwrap_or_default().to_owned()
    }

    /// Runs `script` in the page (script clicks work on any element the page has).
    fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn screenshot(&self, path: &Path) {
        let png = self.call(reqwest::Method::GET, "/screenshot", None);
        std::fs::write(path, base64_decode(png.as_str().unwrap())).unwrap();
    }
}

/// Standard base64, as WebDriver sends screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    let table = |c: u8| -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let digits: Vec<u8> = text.bytes().filter_map(table).collect();
    digits
        .chunks(4)
        .flat_map(|c| {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            bytes.into_iter().take(c.len() - 1)
        })
        .collect()
}

#[test]
fn the_app_shows_the_models_loads_one_and_chats() {
    let port = free_port();
    let home = home_with_test_model("app-e2e", port);
    let perch = PathBuf::from(env!("CARGO_BIN_EXE_perch-app"));

    let desktop = Desktop::start();
    let driver_port = free_port();
    // The app inherits the driver's environment (through WebKitWebDriver).
    let mut driver = Command::new("tauri-driver");
    driver
        .args(["--port", &driver_port.to_string()])
        .env("PERCH_HOME", &home)
        .env("HOME", &home)
        .env("PERCH_OPEN", "models,chat")
        .env("PERCH_SECRET_STORE", "file")
        .env("HF_ENDPOINT", "http://127.0.0.1:9");
    desktop.env(&mut driver);
    let _driver = spawn(&mut driver);
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let driver_url = format!("http://127.0.0.1:{driver_port}");
    until("tauri-driver", Duration::from_secs(30), || {
        http.get(format!("{driver_url}/status")).send().is_ok()
    });
    let created: Value = http
        .post(format!("{driver_url}/session"))
        .json(&json!({"capabilities": {"alwaysMatch": {"tauri:options": {
            "application": perch
        }}}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = created["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"));
    let session = Session {
        http: http.clone(),
        url: format!("{driver_url}/session/{id}"),
    };
    let shots = screenshots("app-screenshots");
    let api = format!("http://127.0.0.1:{port}");

    // The models window shows the model with its verdict.
    session.switch_to("#/models");
    session.find("[data-testid=model-row]", Duration::from_secs(60));
    let text = session.text("[data-testid=model-row]");
    assert!(text.contains("SmolLM2") && text.contains("fits"), "{text}");
    session.screenshot(&shots.join("models.png"));

    // Loading it from the window loads it on the node.
    session.script("document.querySelector('[data-testid=model-row] [data-testid=load]').click()");
    until("the model to load", Duration::from_secs(60), || {
        let models: Value = http
            .get(format!("{api}/api/perch/models"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        models["models"][0]["loaded"] == true
    });

    // The chat window streams an answer.
    session.switch_to("#/chat");
    session.find("[data-testid=model-picker]", Duration::from_secs(30));
    session.script(
        "const p = document.querySelector('[data-testid=model-picker]'); \
         p.value = p.options[p.options.length - 1].value; \
         p.dispatchEvent(new Event('change', { bubbles: true }));",
    );
    let prompt = session.find("[data-testid=prompt]", Duration::from_secs(30));
    session.call(
        reqwest::Method::POST,
        &format!("/element/{prompt}/value"),
        Some(json!({"text": "Say hello in one short sentence."})),
    );
    session.script("document.querySelector('[data-testid=send]').click()");
    session.find("[data-testid=answer-stats]", Duration::from_secs(180));
    assert!(session
        .text("[data-testid=answer-stats]")
        .contains("tokens/s"));
    assert!(!session
        .text("[data-testid=answer] .markdown")
        .trim()
        .is_empty());
    session.screenshot(&shots.join("chat.png"));
    session.call(reqwest::Method::DELETE, "", None);
    eprintln!("app_e2e: screenshots in {}", shots.display());
}
