//! COCO reader on the real labelme COCO instances file (the same three VOC photos).

mod common;

use common::{names, sample};
use sslbench::data;

fn spec(annotations: &std::path::Path) -> String {
    format!(
        "coco:{}:{}",
        annotations.display(),
        sample("labelme-coco").display()
    )
}

/// The present classes of each image, by name.
fn present(ds: &data::Dataset) -> Vec<Vec<&str>> {
    ds.samples
        .iter()
        .map(|s| {
            assert!(s.target.iter().all(|t| *t == 1 || *t == -1));
            ds.classes
                .iter()
                .zip(&s.target)
                .filter(|(_, t)| **t == 1)
                .map(|(c, _)| c.as_str())
                .collect()
        })
        .collect()
}

#[test]
fn presence_per_image_with_categories_sorted_by_id() {
    let root = sample("labelme-coco");
    let ds = data::open(&spec(&root.join("annotations.json")), None).unwrap();
    assert_eq!(ds.classes.len(), 21);
    assert_eq!(ds.classes[0], "_background_");
    assert_eq!(ds.classes[20], "tv/monitor");
    let ids: Vec<_> = ds.samples.iter().map(|s| s.id.as_str()).collect();
    // Sorted by file_name (FAIR), not in file order (000003, 000025, 000006).
    assert_eq!(
        ids,
        [
            "JPEGImages/2011_000003.jpg",
            "JPEGImages/2011_000006.jpg",
            "JPEGImages/2011_000025.jpg"
        ]
    );
    assert_eq!(
        present(&ds),
        [
            vec!["bottle", "person"],
            vec!["chair", "person", "sofa"],
            vec!["bus", "car"]
        ]
    );
    assert!(ds
        .samples
        .iter()
        .all(|s| s.path == root.join(&s.id) && s.path.exists()));
    assert!(ds.objects.is_none());
    assert_eq!(ds.manifest_digest().unwrap().len(), 64);
}

#[test]
fn class_override_selects_and_orders_columns() {
    let ds = data::open(
        &spec(&sample("labelme-coco/annotations.json")),
        Some(names(&["person", "bus"])),
    )
    .unwrap();
    let targets: Vec<_> = ds.samples.iter().map(|s| s.target.clone()).collect();
    assert_eq!(targets, [vec![1, -1], vec![1, -1], vec![-1, 1]]);

    let unknown = data::open(
        &spec(&sample("labelme-coco/annotations.json")),
        Some(names(&["pottedplant"])),
    );
    let msg = format!("{:#}", unknown.unwrap_err());
    assert!(
        msg.contains("'pottedplant'") && msg.contains("annotations.json"),
        "{msg}"
    );
}

/// FAIR's filter: zero-area or sub-pixel boxes and `ignore` regions do not count; images
/// without annotations stay, all absent.
#[test]
fn invalid_objects_do_not_count_and_unannotated_images_stay() {
    let text = std::fs::read_to_string(sample("labelme-coco/annotations.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let annotations = json["annotations"].as_array_mut().unwrap();
    for a in annotations.iter_mut() {
        match a["category_id"].as_u64().unwrap() {
            5 => a["area"] = 0.0.into(),                         // bottle in 000003
            9 => a["bbox"] = serde_json::json!([10, 10, 1, 30]), // chair in 000006: 1 px wide
            18 => a["ignore"] = 1.into(),                        // sofa in 000006
            _ => {}
        }
    }
    json["images"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(
            {"id": 7, "file_name": "JPEGImages/2011_999999.jpg", "width": 10, "height": 10}
        ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("instances.json");
    std::fs::write(&path, json.to_string()).unwrap();

    let ds = data::open(&spec(&path), None).unwrap();
    assert_eq!(
        present(&ds),
        [vec!["person"], vec!["person"], vec!["bus", "car"], vec![]]
    );
    let msg = format!("{:#}", ds.manifest_digest().unwrap_err());
    assert!(msg.contains("2011_999999.jpg"), "{msg}");
}

#[test]
fn malformed_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("instances.json");
    std::fs::write(&path, r#"{"images": []}"#).unwrap();
    let msg = format!("{:#}", data::open(&spec(&path), None).unwrap_err());
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("categories"),
        "{msg}"
    );
}
