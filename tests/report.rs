//! Reports: tables from results JSONs (Markdown, CSV, LaTeX shapes), the published rows of
//! `tasks/reference/goyal2019.toml` and the Δ rows, a wrong schema named with its file, and
//! the PNG plots. The metric values here are synthetic (formatting logic, not measurement):
//! they are chosen so that every check can fail (taps out of order, distinct per cell).

use sslbench::report::{
    self, table, Format, Metric, Reference, RowKind, RunResult, Selection, Spread, RESULT_SCHEMA,
};
use std::path::Path;
use std::process::Command;

/// A synthetic result of `task` for `backbone`.
fn result(
    task: &str,
    backbone: &str,
    arch: &str,
    paper_row: Option<&str>,
    metrics: Vec<Metric>,
) -> RunResult {
    RunResult {
        schema: RESULT_SCHEMA.to_string(),
        run: format!("{task}_{backbone}"),
        task: task.to_string(),
        kind: "synthetic".to_string(),
        task_file: format!("tasks/{task}.toml").into(),
        backbone_name: backbone.to_string(),
        arch: arch.to_string(),
        paper_row: paper_row.map(str::to_string),
        backbone: serde_json::json!({}),
        config: serde_json::json!({}),
        taps: metrics.iter().map(|m| m.tap.clone()).collect(),
        cache: vec![],
        metrics,
        tables: vec![],
        details: serde_json::json!({}),
        timings: serde_json::json!({}),
        provenance: None,
    }
}

/// Synthetic per-layer values: `base + i` for tap i, given in scrambled order.
fn per_layer(name: &str, taps: &[&str], base: f64) -> Vec<Metric> {
    let mut out: Vec<Metric> = taps
        .iter()
        .enumerate()
        .map(|(i, tap)| Metric {
            tap: tap.to_string(),
            name: name.to_string(),
            value: base + i as f64,
            ..Default::default()
        })
        .collect();
    out.reverse();
    out
}

/// Synthetic low-shot values at `tap`: `base + k/10` with a spread of `std`.
fn lowshot(tap: &str, ks: &[usize], base: f64, std: f64, variant: Option<&str>) -> Vec<Metric> {
    ks.iter()
        .map(|&k| Metric {
            tap: tap.to_string(),
            name: "mAP".to_string(),
            value: base + k as f64 / 10.0,
            k: Some(k),
            spread: Some(Spread {
                std,
                min: base,
                max: base + 1.0,
                n: 5,
            }),
            variant: variant.map(str::to_string),
        })
        .collect()
}

const RESNET: [&str; 5] = ["conv1", "res2", "res3", "res4", "res5"];

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with('|')).collect()
}

#[test]
fn per_layer_table_in_three_formats() {
    let results = vec![
        result(
            "voc07_svm",
            "resnet50_a",
            "resnet50",
            None,
            per_layer("mAP", &RESNET, 10.0),
        ),
        result(
            "voc07_svm",
            "resnet50_b",
            "resnet50",
            None,
            per_layer("mAP", &RESNET[2..], 40.0),
        ),
    ];
    let t = table::paper_table(&results, &Selection::default(), None).unwrap();
    assert_eq!(t.columns, RESNET, "taps in network order");
    assert_eq!(t.cell("resnet50_a", "res4").unwrap().mean, 13.0);
    assert_eq!(t.cell("resnet50_b", "res3").unwrap().mean, 40.0);
    assert!(t.cell("resnet50_b", "conv1").is_none());

    let md = t.render(Format::Markdown);
    let rows = lines(&md);
    assert_eq!(rows.len(), 4, "header, rule, two rows:\n{md}");
    let header: Vec<&str> = rows[0].split('|').map(str::trim).collect();
    assert_eq!(
        header,
        [
            "",
            "checkpoint",
            "conv1",
            "res2",
            "res3",
            "res4",
            "res5",
            ""
        ]
    );
    assert!(
        rows[1].contains("---:"),
        "numbers right-aligned: {}",
        rows[1]
    );
    let widths: Vec<usize> = rows.iter().map(|l| l.chars().count()).collect();
    assert!(
        widths.iter().all(|w| *w == widths[0]),
        "padded columns:\n{md}"
    );
    assert!(
        rows[3].contains("| 40.0 |") && rows[3].contains("resnet50_b") && rows[3].contains(" - ")
    );
    assert!(md.starts_with("### voc07_svm (mAP, per layer)"));

    let csv = t.render(Format::Csv);
    let csv_rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        csv_rows[0],
        [
            "checkpoint",
            "kind",
            "conv1",
            "res2",
            "res3",
            "res4",
            "res5"
        ]
    );
    assert_eq!(
        csv_rows[1],
        ["resnet50_a", "ours", "10", "11", "12", "13", "14"]
    );
    assert_eq!(
        csv_rows[2],
        ["resnet50_b", "ours", "", "", "40", "41", "42"]
    );

    let tex = t.render(Format::Latex);
    assert!(tex.contains("\\begin{tabular}{lrrrrr}"), "{tex}");
    assert!(
        tex.contains("resnet50\\_a & 10.0 & 11.0 & 12.0 & 13.0 & 14.0 \\\\"),
        "{tex}"
    );
    assert_eq!(
        tex.matches("\\\\").count(),
        3,
        "header and two rows:\n{tex}"
    );
    assert!(
        tex.contains("\\toprule")
            && tex.contains("\\bottomrule")
            && tex.ends_with("\\end{tabular}\n")
    );
}

#[test]
fn lowshot_columns_per_k_with_spread() {
    let ks = [1, 2, 4, 8];
    let mut metrics = lowshot("res4", &ks, 30.0, 1.25, None);
    metrics.extend(lowshot("res5", &ks, 50.0, 2.5, None));
    let results = vec![result(
        "voc07_lowshot",
        "resnet50_a",
        "resnet50",
        None,
        metrics,
    )];

    let best = table::paper_table(&results, &Selection::default(), None).unwrap();
    assert_eq!(best.columns, ["k=1", "k=2", "k=4", "k=8"]);
    assert_eq!(
        best.rows[0].label, "resnet50_a @res5",
        "the tap with the best mean over k"
    );
    let md = best.render(Format::Markdown);
    assert!(md.contains("| 50.8 ± 2.5 |"), "mean ± std:\n{md}");

    let at_res4 = Selection {
        tap: Some("res4".into()),
        ..Default::default()
    };
    let t = table::paper_table(&results, &at_res4, None).unwrap();
    assert_eq!(t.rows[0].label, "resnet50_a @res4");
    let cell = t.cell("resnet50_a @res4", "k=2").unwrap();
    assert_eq!((cell.mean, cell.std), (30.2, Some(1.25)));
    let csv = t.render(Format::Csv);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(
        header,
        [
            "checkpoint",
            "kind",
            "k=1",
            "k=1 std",
            "k=2",
            "k=2 std",
            "k=4",
            "k=4 std",
            "k=8",
            "k=8 std"
        ]
    );
    assert!(t.render(Format::Latex).contains("30.1 $\\pm$ 1.2"));
}

#[test]
fn variants_are_rows_of_one_task_and_columns_of_several() {
    let mut ls = lowshot("res5", &[1, 2], 20.0, 1.0, Some("paper-choice"));
    ls.extend(lowshot("res5", &[1, 2], 10.0, 1.0, Some("honest")));
    let results = vec![
        result("voc07_lowshot", "resnet50_a", "resnet50", None, ls),
        result(
            "voc07_svm",
            "resnet50_a",
            "resnet50",
            None,
            per_layer("mAP", &["res4", "res5"], 60.0),
        ),
    ];
    let one = Selection {
        task: Some("voc07_lowshot".into()),
        ..Default::default()
    };
    let t = table::paper_table(&results, &one, None).unwrap();
    let labels: Vec<&str> = t.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "resnet50_a [honest] @res5",
            "resnet50_a [paper-choice] @res5"
        ]
    );

    let all = table::paper_table(&results, &Selection::default(), None).unwrap();
    assert_eq!(all.rows.len(), 1, "one row per checkpoint");
    assert_eq!(
        all.columns,
        [
            "voc07_lowshot[honest]/k=1",
            "voc07_lowshot[honest]/k=2",
            "voc07_lowshot[paper-choice]/k=1",
            "voc07_lowshot[paper-choice]/k=2",
            "voc07_svm/res4",
            "voc07_svm/res5",
        ]
    );
    assert_eq!(all.cell("resnet50_a", "voc07_svm/res5").unwrap().mean, 61.0);
    assert!(
        all.notes.iter().any(|n| n.contains("resnet50_a at res5")),
        "{:?}",
        all.notes
    );

    let missing = Selection {
        task: Some("coco2014_svm".into()),
        ..Default::default()
    };
    let err = table::paper_table(&results, &missing, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("coco2014_svm") && err.contains("voc07_svm"),
        "{err}"
    );
}

#[test]
fn published_rows_and_deltas_from_goyal2019() {
    let reference = Reference::load("goyal2019").unwrap();
    let from_file = Reference::load("tasks/reference/goyal2019.toml").unwrap();
    assert_eq!(reference.tables.len(), from_file.tables.len());
    let published = reference
        .tables_for("places205_linear", "resnet50", "top1")
        .find(|t| !t.at_best_layer())
        .expect("a per-layer Places205 table");
    let best = reference
        .tables_for("places205_linear", "resnet50", "top1")
        .find(|t| t.at_best_layer())
        .expect("a best-layer Places205 table");
    let random_res5 = published.value("Random", "res5").unwrap();

    let mut ours = per_layer("top1", &["res4", "res5", "pool5"], 20.0);
    ours.extend(per_layer("top5", &["res4", "res5", "pool5"], 50.0));
    let mut results = vec![
        result(
            "places205_linear",
            "resnet50_random",
            "resnet50",
            Some("Random"),
            ours,
        ),
        result(
            "places205_linear",
            "resnet50_mine",
            "resnet50",
            None,
            per_layer("top1", &["res5"], 33.0),
        ),
    ];
    for m in results.iter_mut().flat_map(|r| r.metrics.iter_mut()) {
        m.variant = Some("paper".into());
    }
    let t = table::paper_table(&results, &Selection::default(), Some(&reference)).unwrap();
    assert_eq!(
        t.columns,
        ["res4", "res5", "pool5", "best"],
        "our taps, top1 by default, and the best layer beside the best-layer values"
    );
    assert!(
        t.row("resnet50_random").is_some(),
        "one variant: not in the label"
    );
    assert!(
        t.notes.iter().any(|n| n.contains("`paper` variant")),
        "{:?}",
        t.notes
    );
    let random = t.row("Random (published)").expect("published Random row");
    assert_eq!(random.kind, RowKind::Published);
    assert_eq!(
        t.cell("Random (published)", "res5").unwrap().mean,
        random_res5
    );
    assert!(
        t.cell("Random (published)", "pool5").is_none(),
        "the paper has no pool5 column"
    );
    // One row per published name: the per-layer rows and the best-layer rows share theirs.
    let mut names: Vec<&str> = published.rows.iter().map(|r| r.name.as_str()).collect();
    names.extend(best.rows.iter().map(|r| r.name.as_str()));
    names.sort();
    names.dedup();
    assert_eq!(
        t.rows
            .iter()
            .filter(|r| r.kind == RowKind::Published)
            .count(),
        names.len()
    );

    let delta = t.row("resnet50_random vs Random").expect("a Δ row");
    assert_eq!(delta.kind, RowKind::Delta);
    let d = t.cell("resnet50_random vs Random", "res5").unwrap().mean;
    assert!(
        (d - (21.0 - random_res5)).abs() < 1e-9,
        "ours − published: {d}"
    );
    assert!(
        t.row("resnet50_mine vs Random").is_none(),
        "no paper_row, no Δ"
    );
    assert_eq!(
        t.rows.last().unwrap().kind,
        RowKind::Delta,
        "ours, published, then Δ"
    );

    let md = t.render(Format::Markdown);
    let expected = format!("{:+.1}", 21.0 - random_res5);
    assert!(
        md.contains("Δ resnet50_random vs Random") && md.contains(&expected),
        "{md}"
    );
    assert!(
        md.contains("arXiv:1905.01235"),
        "the source is cited:\n{md}"
    );
    assert!(t
        .render(Format::Latex)
        .contains("$\\Delta$ resnet50\\_random vs Random"));
    let csv = t.render(Format::Csv);
    assert!(
        csv.lines()
            .any(|l| l.starts_with("resnet50_random vs Random,delta,")),
        "{csv}"
    );

    let top5 = Selection {
        metric: Some("top5".into()),
        ..Default::default()
    };
    let t5 = table::paper_table(&results, &top5, Some(&reference)).unwrap();
    assert!(
        t5.rows.iter().all(|r| r.kind == RowKind::Ours),
        "no top5 table published here"
    );
    assert!(t5
        .notes
        .iter()
        .any(|n| n.contains("no places205_linear table for resnet50 (top5)")));
}

#[test]
fn reference_files_are_checked() {
    let err = Reference::load("goyal2018").unwrap_err().to_string();
    assert!(
        err.contains("goyal2019"),
        "names the built-in references: {err}"
    );
    let bad = "schema = \"sslbench.reference/1\"\n[source]\nid = \"x\"\ncitation = \"x\"\n\
               [[table]]\nid = \"t\"\ntask = \"voc07_svm\"\narch = \"resnet50\"\nmetric = \"mAP\"\n\
               citation = \"x\"\ncolumns = [\"res4\", \"res5\"]\nrows = [{ name = \"A\", values = [1.0, \"-\"] }, \
               { name = \"B\", values = [1.0] }]\n";
    let err = Reference::parse(bad).unwrap_err().to_string();
    assert!(
        err.contains("`B`") && err.contains("1 values for 2 columns"),
        "{err}"
    );
    let dash = bad.replace(", \n{ name = \"B\", values = [1.0] }", "");
    let dash = dash.replace(
        "rows = [{ name = \"A\", values = [1.0, \"-\"] }, { name = \"B\", values = [1.0] }]",
        "rows = [{ name = \"A\", values = [1.0, \"-\"] }]",
    );
    let ok = Reference::parse(&dash).unwrap();
    assert_eq!(ok.tables[0].value("A", "res4"), Some(1.0));
    assert_eq!(ok.tables[0].value("A", "res5"), None);
    assert!(
        Reference::parse(&dash.replace("\"-\"", "\"n/a\"")).is_err(),
        "only \"-\" stands for none"
    );
}

fn sslbench(args: &[&str], font: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sslbench"));
    cmd.args(args);
    if let Some(f) = font {
        cmd.env("SSLBENCH_FONT", f);
    }
    cmd.output().unwrap()
}

fn write_json(dir: &Path, r: &RunResult) -> String {
    let path = dir.join(format!("{}.json", r.run));
    std::fs::write(&path, serde_json::to_string_pretty(r).unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn wrong_schema_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = result(
        "voc07_svm",
        "resnet50_a",
        "resnet50",
        None,
        per_layer("mAP", &RESNET, 10.0),
    );
    old.schema = "sslbench.result/1".into();
    let path = write_json(dir.path(), &old);
    let err = RunResult::read(Path::new(&path)).unwrap_err().to_string();
    assert!(
        err.contains(&path) && err.contains("sslbench.result/1"),
        "{err}"
    );

    let out = sslbench(&["table", &path], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&path) && stderr.contains(RESULT_SCHEMA),
        "{stderr}"
    );
}

/// Decodes a PNG and counts its pixels that are not white.
fn inked(path: &Path) -> (u32, u32, usize) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    let ink = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    (img.width(), img.height(), ink)
}

#[test]
fn write_run_writes_tables_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let mut lin = per_layer("top1", &RESNET, 20.0);
    lin.extend(per_layer("top5", &RESNET, 45.0));
    let linear = result(
        "places205_linear",
        "resnet50_a",
        "resnet50",
        Some("Random"),
        lin,
    );
    report::write_run(&linear, dir.path()).unwrap();
    let stem = dir.path().join("places205_linear_resnet50_a");
    let back = RunResult::read(&stem.with_extension("json")).unwrap();
    assert_eq!(back.metrics, linear.metrics);
    let md = std::fs::read_to_string(stem.with_extension("md")).unwrap();
    assert_eq!(lines(&md).len(), 4, "header, rule, top1, top5:\n{md}");
    assert!(md.contains("| top5   |"), "{md}");
    let csv = std::fs::read_to_string(stem.with_extension("csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 10);
    assert!(csv.contains("places205_linear_resnet50_a,places205_linear,resnet50_a,resnet50,Random,res4,top1,,,23,,,,"), "{csv}");
    let (w, h, ink) = inked(&dir.path().join("places205_linear_resnet50_a_layers.png"));
    assert_eq!((w, h), (1000, 600));
    assert!(ink > 20_000, "ten bars drawn: {ink} inked pixels");

    let mut ls = lowshot("res4", &[1, 2, 4, 8, 16], 30.0, 2.0, Some("honest"));
    ls.extend(lowshot(
        "res5",
        &[1, 2, 4, 8, 16],
        40.0,
        3.0,
        Some("honest"),
    ));
    let low = result("voc07_lowshot", "resnet50_a", "resnet50", None, ls);
    report::write_run(&low, dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("voc07_lowshot_resnet50_a.md")).unwrap();
    assert!(
        md.contains("| mAP res5 [honest] |") && md.contains("41.6 ± 3.0"),
        "{md}"
    );
    assert!(!dir
        .path()
        .join("voc07_lowshot_resnet50_a_layers.png")
        .exists());
    let (w, h, ink) = inked(&dir.path().join("voc07_lowshot_resnet50_a_lowshot.png"));
    assert_eq!((w, h), (1000, 600));
    assert!(ink > 10_000, "two curves with bands: {ink} inked pixels");

    let one_tap = result(
        "voc07_svm",
        "resnet50_b",
        "resnet50",
        None,
        per_layer("mAP", &["res5"], 70.0),
    );
    report::write_run(&one_tap, dir.path()).unwrap();
    assert!(dir.path().join("voc07_svm_resnet50_b.md").exists());
    assert!(
        !dir.path().join("voc07_svm_resnet50_b_layers.png").exists(),
        "no bars for one tap"
    );
}

#[test]
fn table_command_writes_file_and_plot_even_without_a_font() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_json(
        dir.path(),
        &result(
            "places205_linear",
            "resnet50_random",
            "resnet50",
            Some("Random"),
            per_layer("top1", &RESNET, 10.0),
        ),
    );
    let b = write_json(
        dir.path(),
        &result(
            "places205_linear",
            "resnet50_b",
            "resnet50",
            None,
            per_layer("top1", &RESNET, 30.0),
        ),
    );
    let csv = dir.path().join("table.csv");
    let png = dir.path().join("table.png");
    let out = sslbench(
        &[
            "table",
            &a,
            &b,
            "--reference",
            "goyal2019",
            "--format",
            "csv",
            "--out",
            csv.to_str().unwrap(),
            "--plot",
            png.to_str().unwrap(),
        ],
        Some("/nonexistent/font.ttf"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "one line about the font: {stderr}");
    assert!(warnings[0].contains("SSLBENCH_FONT"), "{stderr}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.starts_with("checkpoint,kind,conv1,res2,res3,res4,res5,best\n"),
        "{text}"
    );
    assert!(text.contains("Random (published),published,"), "{text}");
    let (w, h, ink) = inked(&png);
    assert_eq!((w, h), (1000, 600));
    assert!(ink > 2_000, "curves drawn without text: {ink}");

    let out = sslbench(
        &[
            "table",
            &a,
            "--plot",
            dir.path().join("t.svg").to_str().unwrap(),
        ],
        None,
    );
    assert!(!out.status.success(), "a plot path must end in .png");
    let out = sslbench(&["table", &a, "--format", "html"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("markdown, csv or latex"));
}

/// The best tap beside values published at the best layer: the highest accuracy, the lowest
/// angular error; VISSL's re-evaluation as a second reference; every format carries them.
#[test]
fn best_layer_values_normals_and_vissl_rows_beside_ours() {
    let goyal = Reference::load("goyal2019").unwrap();
    let vissl = Reference::load("vissl_model_zoo").unwrap();
    let voc = result(
        "voc07_svm",
        "resnet50_jigsaw",
        "resnet50",
        Some("Jigsaw ImageNet-1k"),
        per_layer("mAP", &["res3", "res5", "res4"], 50.0),
    );
    // per_layer gives res3 50, res5 51, res4 52: the best tap is res4.
    let sel = Selection::default();
    let t = table::paper_table(std::slice::from_ref(&voc), &sel, Some(&goyal)).unwrap();
    assert_eq!(t.columns, ["res3", "res4", "res5", "best"]);
    assert_eq!(t.cell("resnet50_jigsaw", "best").unwrap().mean, 52.0);
    assert!(
        t.notes
            .iter()
            .any(|n| n == "best layer of resnet50_jigsaw: res4"),
        "{:?}",
        t.notes
    );
    let published = t
        .cell("Jigsaw ImageNet-1k (published)", "best")
        .unwrap()
        .mean;
    assert_eq!(published, 64.5);
    assert!(t.cell("Jigsaw ImageNet-1k (published)", "res4").is_none());
    let d = t
        .cell("resnet50_jigsaw vs Jigsaw ImageNet-1k", "best")
        .unwrap()
        .mean;
    assert!((d - (52.0 - 64.5)).abs() < 1e-9, "{d}");
    assert!(
        t.row("Jigsaw YFCC-100M (published)").is_some(),
        "the YFCC rows are there"
    );
    for format in [Format::Markdown, Format::Csv, Format::Latex] {
        let text = t.render(format);
        assert!(
            text.contains("64.5") && text.contains("-12.5"),
            "{format:?}:\n{text}"
        );
        assert!(text.contains("Jigsaw YFCC-100M"), "{format:?}:\n{text}");
    }

    // Surface normals: lower is better, so the best tap is the smallest median.
    let normals = result(
        "nyuv2_normals",
        "resnet50_mine",
        "resnet50",
        Some("Table 7 row 4"),
        vec![
            Metric {
                tap: "res4".into(),
                name: "median".into(),
                value: 19.5,
                ..Default::default()
            },
            Metric {
                tap: "res5".into(),
                name: "median".into(),
                value: 17.25,
                ..Default::default()
            },
        ],
    );
    let median = Selection {
        metric: Some("median".into()),
        ..Default::default()
    };
    let t = table::paper_table(&[normals], &median, Some(&goyal)).unwrap();
    assert_eq!(t.cell("resnet50_mine", "best").unwrap().mean, 17.25);
    assert_eq!(
        t.cell("Table 7 row 4 (published)", "best").unwrap().mean,
        13.1
    );
    let d = t
        .cell("resnet50_mine vs Table 7 row 4", "best")
        .unwrap()
        .mean;
    assert!((d - (17.25 - 13.1)).abs() < 1e-9, "{d}");

    // VISSL's model zoo: its own rows, labelled as its re-evaluation, not the paper's.
    let probe = result(
        "imagenet_linear",
        "resnet50_jigsaw_in22k",
        "resnet50",
        Some("Jigsaw ImageNet-22k"),
        per_layer("top1", &["res4", "res5"], 40.0),
    );
    let t = table::paper_table(std::slice::from_ref(&probe), &sel, Some(&vissl)).unwrap();
    assert_eq!(
        t.cell("Jigsaw ImageNet-22k (published)", "best")
            .unwrap()
            .mean,
        53.09
    );
    let d = t
        .cell("resnet50_jigsaw_in22k vs Jigsaw ImageNet-22k", "best")
        .unwrap()
        .mean;
    assert!((d - (41.0 - 53.09)).abs() < 1e-9, "{d}");
    assert!(
        t.notes
            .iter()
            .any(|n| n.contains("not the paper's numbers")),
        "{:?}",
        t.notes
    );
    // The paper has no ImageNet-22k row to set beside it: said so.
    let t = table::paper_table(&[probe], &sel, Some(&goyal)).unwrap();
    assert!(t
        .row("resnet50_jigsaw_in22k vs Jigsaw ImageNet-22k")
        .is_none());
    assert!(t
        .notes
        .iter()
        .any(|n| n.contains("`Jigsaw ImageNet-22k` is not a published")));
}
