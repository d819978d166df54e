//! `sslbench report` in a real browser. A results folder is made from real runs, scaled down
//! to seconds: the CI sweep (a Rotation pretext run of 10 steps, VOC07 SVM and low-shot on
//! it and on random weights, Fashion-MNIST), a Places205 linear probe (whose table has
//! published rows), a navigation run (curves, rollout GIF), a surface-normals run (MiniWorld
//! frames), Fast R-CNN on 8 ViZDoom frames (detections) and 4 steps of Colorization (its
//! colourised strips). The report is rendered by headless
//! Chromium; from its DOM: every table of the paper's shape has our rows and the published
//! rows the library puts in it, every image the runs wrote is on the page, and none failed to
//! load, after the report and the results were moved together. The screenshot is not blank.
//!
//! Needs Debian's `chromium` (`bash data-scripts/setup.sh` installs it).

mod common;

use common::{ok, sample, small_probe_sets, sslbench};
use sslbench::report::{table, Reference, RowKind, RunResult, Selection};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BACKBONE: &str = "configs/backbones/resnet50_w8_random.toml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The CI sweep at two taps (so that it has layer plots) with two SVM costs, into `site`.
fn sweep_file(site: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("configs/sweeps/ci_slurm.toml")).unwrap();
    let res5 = "    \"pooling.resnet50.res5={kernel=1,stride=1,pad=0}\",\n";
    assert!(text.contains(res5) && text.contains("taps = \"res5\""));
    let text = text
        .replace("taps = \"res5\"", "taps = \"res3,res5\"")
        .replace(res5, &(res5.replace("res5", "res3") + res5))
        .replace("\"svm.costs=vissl\"", "\"svm.costs=[0.1,1.0]\"");
    let path = site.join("sweep.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The first `n` images of each split of the ViZDoom VOC sample, as a VOC root under `dir`
/// (its annotations and images linked, its image sets cut down).
fn doom_subset(dir: &Path, n: usize) -> PathBuf {
    let from = sample("doom-voc");
    let sets = dir.join("ImageSets/Main");
    std::fs::create_dir_all(&sets).unwrap();
    for sub in ["Annotations", "JPEGImages"] {
        std::os::unix::fs::symlink(from.join(sub), dir.join(sub)).unwrap();
    }
    std::fs::copy(from.join("classes.txt"), dir.join("classes.txt")).unwrap();
    for split in ["trainval", "test"] {
        let read = |name: &str| std::fs::read_to_string(from.join("ImageSets/Main").join(name));
        let ids: Vec<String> = read(&format!("{split}.txt"))
            .unwrap()
            .lines()
            .take(n)
            .map(str::to_string)
            .collect();
        std::fs::write(sets.join(format!("{split}.txt")), ids.join("\n") + "\n").unwrap();
        for class in std::fs::read_to_string(from.join("classes.txt"))
            .unwrap()
            .lines()
        {
            let name = format!("{}_{split}.txt", class.trim());
            let kept: String = read(&name)
                .unwrap()
                .lines()
                .filter(|l| ids.iter().any(|id| l.split_whitespace().next() == Some(id)))
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(sets.join(name), kept).unwrap();
        }
    }
    dir.to_path_buf()
}

/// `sslbench ARGS` in the repository root with its own cache and one thread.
fn job(site: &Path, name: &str, args: &[String]) -> Command {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = sslbench(&site.join(format!("cache-{name}")), &args);
    cmd.current_dir(root()).env("RAYON_NUM_THREADS", "1");
    cmd
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Runs every job at once and waits for all; each must succeed.
fn run_all(jobs: Vec<Command>) {
    let children: Vec<_> = jobs
        .into_iter()
        .map(|mut c| {
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        ok(child.wait_with_output().unwrap());
    }
}

/// The results folder `site/results` (pretext runs in `site/runs`).
fn make_results(site: &Path) -> PathBuf {
    let results = site.join("results");
    let out = results.to_str().unwrap().to_string();
    let sweep = strings(&[
        "sweep",
        sweep_file(site).to_str().unwrap(),
        "--out",
        &out,
        "--runs",
        site.join("runs").to_str().unwrap(),
    ]);
    let mut probe = strings(&[
        "run",
        "tasks/places205_linear.toml",
        "--backbone",
        "configs/backbones/resnet50_random.toml",
        "--taps",
        "conv1,res3,pool5",
        "--out",
        &out,
    ]);
    let schedule = ["probe.fair.length=50", "probe.fair.step=40"].map(str::to_string);
    for s in small_probe_sets().into_iter().chain(schedule) {
        probe.extend(["--set".to_string(), s]);
    }
    let mut nav = strings(&[
        "nav",
        "configs/nav/ci_builtin.toml",
        "--backbone",
        BACKBONE,
        "--out",
        &out,
    ]);
    for s in [
        "ppo.frames=256",
        "ppo.rollout=32",
        "env.envs=2",
        "env.builtin.max_steps=20",
        "eval.episodes=2",
        "eval.rollout_frames=20",
    ] {
        nav.extend(strings(&["--set", s]));
    }
    let mut normals = strings(&[
        "run",
        "configs/normals/ci_miniworld.toml",
        "--backbone",
        BACKBONE,
        "--out",
        &out,
    ]);
    for s in [
        format!("data.root={}", sample("normals-miniworld").display()),
        "solver.max_iter=10".into(),
        "train.checkpoint_every=10".into(),
        "input.train_short_sides=[80]".into(),
        "input.test_short_side=80".into(),
    ] {
        normals.extend(["--set".to_string(), s]);
    }
    // A Colorization run below the results folder, for its colourised strips.
    let colour = strings(&[
        "pretrain",
        "configs/pretext/demo_colorization.toml",
        "--out",
        results.join("pretext/colour").to_str().unwrap(),
        "--set",
        "train.steps=4",
        "--set",
        "train.log_every=2",
        "--set",
        "train.checkpoint_every=4",
    ]);
    run_all(vec![
        job(site, "colour", &colour),
        job(site, "sweep", &sweep),
        job(site, "probe", &probe),
        job(site, "nav", &nav),
        job(site, "normals", &normals),
        detection_job(site, &out),
    ]);
    results
}

/// Fast R-CNN for 4 iterations on 8 ViZDoom frames, after their selective-search proposals.
fn detection_job(site: &Path, out: &str) -> Command {
    let voc = doom_subset(&site.join("doom8"), 8);
    let mut sets = vec![format!("data.root={}", voc.display())];
    for split in ["trainval", "test"] {
        let pkl = site.join(format!("{split}.pkl"));
        let dataset = format!("voc:{}:{split}", voc.display());
        let args = strings(&["proposals", "--dataset", &dataset, "--out"]);
        let mut cmd = job(site, "proposals", &args);
        ok(cmd.arg(&pkl).output().unwrap());
        let key = if split == "test" { "test" } else { "train" };
        sets.push(format!("data.{key}_proposals=[\"{}\"]", pkl.display()));
    }
    sets.extend(
        [
            "solver.max_iter=4",
            "solver.step_size=3",
            "solver.warmup_iters=1",
            "train.checkpoint_every=4",
        ]
        .map(str::to_string),
    );
    let mut args = strings(&[
        "run",
        "configs/detection/ci_doom.toml",
        "--backbone",
        BACKBONE,
        "--out",
        out,
    ]);
    for s in sets {
        args.extend(["--set".to_string(), s]);
    }
    job(site, "detection", &args)
}

/// Debian's chromium, or a failure that says how to install it.
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .unwrap();
        if found.status.success() {
            return PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
        }
    }
    panic!(
        "no chromium on PATH: this test renders the report in it. Install it with \
         `bash data-scripts/setup.sh` (or `apt-get install chromium` on Debian)"
    );
}

/// Headless chromium on `page` with `args`; its stdout (through a file: a pipe would fill
/// up while the browser waits for it). Killed after 120 s.
fn browse(profile: &Path, page: &Path, args: &[&str]) -> String {
    std::fs::create_dir_all(profile).unwrap();
    let stdout = profile.join("stdout.txt");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()).replace(' ', "%20"))
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("chromium did not finish within 120 s on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium failed on {}", page.display());
    std::fs::read_to_string(stdout).unwrap()
}

/// Text of the DOM's serialisation back to characters.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The text between `start` and the next `end` after each occurrence of `start` in `s`.
fn between<'a>(s: &'a str, start: &str, end: &str) -> Vec<&'a str> {
    s.split(start)
        .skip(1)
        .map(|part| part.split(end).next().unwrap())
        .collect()
}

/// The paper-shaped tables of the DOM's `section`: caption text, then (kind, label) per row.
fn dom_tables(dom: &str, section: &str) -> Vec<(String, Vec<(String, String)>)> {
    let part = between(dom, &format!("<section id=\"{section}\">"), "</section>");
    assert_eq!(part.len(), 1, "no section {section} in the DOM");
    between(part[0], "<table class=\"sortable paper\">", "</table>")
        .into_iter()
        .map(|t| {
            let caption = between(t, "<caption>", "</caption>")[0];
            let caption = caption.split(" <span").next().unwrap();
            let rows = between(t, "data-kind=\"", "</th>")
                .into_iter()
                .map(|r| {
                    let (kind, rest) = r.split_once('"').unwrap();
                    let label = rest.rsplit('>').next().unwrap();
                    (kind.to_string(), unescape(label))
                })
                .collect();
            (unescape(caption), rows)
        })
        .collect()
}

#[test]
fn the_report_renders_in_chromium_with_every_table_and_image() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    let started = Instant::now();
    let results = make_results(&site);
    eprintln!("results in {:.1} s", started.elapsed().as_secs_f64());
    let report = site.join("report");
    let text = ok(sslbench(
        &site.join("cache-report"),
        &[
            "report",
            results.to_str().unwrap(),
            "--out",
            report.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap());
    assert!(text.contains("index.html"), "{text}");

    // What the library says the tables hold, and the images the runs wrote.
    let runs: Vec<RunResult> = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| RunResult::read(&p).unwrap())
        .collect();
    assert_eq!(
        runs.len(),
        8,
        "4 sweep cells, probe, nav, normals, detection"
    );
    let reference = Reference::load("goyal2019").unwrap();
    let mut expected = Vec::new();
    let mut tasks: Vec<&str> = runs.iter().map(|r| r.task.as_str()).collect();
    tasks.sort();
    tasks.dedup();
    for task in tasks {
        let mut metrics: Vec<&str> = Vec::new();
        for m in runs
            .iter()
            .filter(|r| r.task == task)
            .flat_map(|r| &r.metrics)
        {
            if !metrics.contains(&m.name.as_str()) {
                metrics.push(&m.name);
            }
        }
        for metric in metrics {
            let sel = Selection {
                task: Some(task.into()),
                metric: Some(metric.into()),
                tap: None,
            };
            expected.push(table::paper_table(&runs, &sel, Some(&reference)).unwrap());
        }
    }
    let published = |t: &table::Table| {
        t.rows
            .iter()
            .filter(|r| r.kind == RowKind::Published)
            .count()
    };
    assert!(
        expected.iter().any(|t| published(t) >= 5),
        "the Places205 table should have the paper's rows"
    );
    let mut images: Vec<String> = Vec::new();
    let mut stack = vec![site.clone()];
    while let Some(d) = stack.pop() {
        for p in std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()) {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() && !name.starts_with("cache-") && name != "checkpoints" && name != "doom8"
            {
                stack.push(p);
            } else if name.ends_with(".png") || name.ends_with(".gif") {
                images.push(name);
            }
        }
    }
    for wanted in [
        "rollout.gif",
        "reward.png",
        "normals.png",
        "detections.png",
        "loss.png",
    ] {
        assert!(
            images.iter().any(|i| i == wanted),
            "no {wanted} among {images:?}"
        );
    }
    assert!(
        images.iter().any(|i| i.starts_with("000_")),
        "no colourised strip"
    );

    // The report and the results move together: the links are relative.
    let moved = dir.path().join("moved site");
    std::fs::rename(&site, &moved).unwrap();
    let page = moved.join("report/index.html");
    let profile = dir.path().join("chromium-profile");
    let dom = browse(
        &profile,
        &page,
        &["--virtual-time-budget=10000", "--dump-dom"],
    );

    // Small: images are linked, not embedded.
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("data:image"), "an image is embedded");
    assert!(html.len() < 1 << 20, "the page is {} bytes", html.len());
    let body = between(&dom, "<body", ">")[0];
    assert!(
        body.contains("data-broken=\"0\""),
        "some images failed to load: {body}"
    );
    let shown = between(&dom, "<img src=\"", "\"");
    for name in &images {
        let encoded = name.replace(' ', "%20");
        assert!(
            shown.iter().any(|s| s.ends_with(&format!("/{encoded}"))),
            "{name} is not on the page"
        );
    }
    assert!(
        body.contains(&format!(
            "data-images=\"{n} of {n} loaded\"",
            n = shown.len()
        )),
        "{body}"
    );
    assert!(
        shown.len() >= images.len(),
        "{} images shown, {} written",
        shown.len(),
        images.len()
    );

    let tables = dom_tables(&dom, "tables");
    assert_eq!(tables.len(), expected.len(), "{tables:?}");
    for want in &expected {
        let (_, rows) = tables
            .iter()
            .find(|(caption, _)| *caption == want.title)
            .unwrap_or_else(|| panic!("no table `{}` in {tables:?}", want.title));
        let kinds = [(RowKind::Ours, "ours"), (RowKind::Published, "published")];
        for (kind, name) in kinds {
            let want_rows: Vec<&str> = want
                .rows
                .iter()
                .filter(|r| r.kind == kind)
                .map(|r| r.label.as_str())
                .collect();
            let got: Vec<&str> = rows
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, l)| l.as_str())
                .collect();
            assert_eq!(got, want_rows, "{}: {name} rows", want.title);
        }
        assert!(
            rows.iter().any(|(k, _)| k == "ours"),
            "{}: none of our rows",
            want.title
        );
    }
    // Every run's section is there with its own tables and its provenance.
    for r in &runs {
        assert!(
            dom.contains(&format!("id=\"run-{}\"", r.run)),
            "no section for {}",
            r.run
        );
    }
    assert!(dom.contains("weights digest") && dom.contains("random:seed=0"));
    for name in ["ci_rotation", "colour"] {
        let id = format!("id=\"pretext-{name}\"");
        assert!(dom.contains(&id), "no section for the pretext run {name}");
    }

    // A click on a header sorts by that column, numerically: the page's own script, clicked
    // by a line added to a copy of the page.
    let click = "<script>document.querySelector('#tables table.paper')\
                 .tHead.rows[0].cells[1].click();</script></body>";
    let sorted_page = page.with_file_name("sorted.html");
    std::fs::write(&sorted_page, html.replace("</body>", click)).unwrap();
    let sorted = browse(
        &profile,
        &sorted_page,
        &["--virtual-time-budget=5000", "--dump-dom"],
    );
    let first = |dom: &str| -> Vec<f64> {
        let part = between(dom, "<section id=\"tables\">", "</section>")[0];
        let table = between(part, "<table class=\"sortable paper\">", "</table>")[0];
        between(table, "</th><td", "</td>")
            .into_iter()
            .filter_map(|cell| between(cell, "data-v=\"", "\"").first()?.parse().ok())
            .collect()
    };
    let (before, after) = (first(&dom), first(&sorted));
    assert!(before.len() >= 6, "{before:?}");
    let mut want = before.clone();
    want.sort_by(f64::total_cmp);
    assert_ne!(
        before, want,
        "the first column was sorted already: the check proves nothing"
    );
    assert_eq!(after, want, "a click on the header did not sort the column");

    let shot = dir.path().join("shot.png");
    let arg = format!("--screenshot={}", shot.display());
    browse(
        &profile,
        &page,
        &[
            "--virtual-time-budget=10000",
            "--window-size=1280,1600",
            &arg,
        ],
    );
    let img = image::open(&shot).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1280, 1600));
    let mut colours = std::collections::HashSet::new();
    let (mut sum, mut sq) = (0.0f64, 0.0f64);
    for p in img.pixels() {
        colours.insert(p.0);
        let l = (f64::from(p.0[0]) + f64::from(p.0[1]) + f64::from(p.0[2])) / 3.0;
        sum += l;
        sq += l * l;
    }
    let n = f64::from(img.width() * img.height());
    let std = (sq / n - (sum / n).powi(2)).sqrt();
    assert!(colours.len() > 200, "{} colours: blank?", colours.len());
    assert!(std > 20.0, "luminance std {std:.1}: blank?");
    // For a look by eye: SSLBENCH_REPORT_SHOT=path keeps the screenshot.
    if let Ok(keep) = std::env::var("SSLBENCH_REPORT_SHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    eprintln!("whole test {:.1} s", started.elapsed().as_secs_f64());
}
